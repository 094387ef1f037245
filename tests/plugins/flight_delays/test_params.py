"""The trigger form's Params: typed, titled, described and bounded, so that the form says what each is."""

from __future__ import annotations

import pytest

from flight_delays.params import PARAMS


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_param_is_typed_titled_and_bounded(name):
    schema = PARAMS[name].schema
    assert schema["title"] and schema["type"]
    types = set(schema["type"]) if isinstance(schema["type"], list) else {schema["type"]}
    if types & {"integer", "number"}:
        assert "minimum" in schema or "exclusiveMinimum" in schema
        assert "maximum" in schema
    elif "string" in types:
        assert "enum" in schema or "maxLength" in schema
    else:
        assert types == {"boolean"}


def test_params_that_need_explaining_have_descriptions():
    undescribed = sorted(n for n, p in PARAMS.items() if not p.description)
    # Self-explanatory numbers of the trainers; every choice and policy is described.
    assert undescribed == ["epochs", "learning_rate", "max_depth", "n_estimators"]
