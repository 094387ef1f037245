"""The Python tasks' adapters: what a failure means to Airflow (a bad request is not retried)."""

from __future__ import annotations

import pytest

from flight_delays import tasks
from tests.plugins.flight_delays.test_preflight import DAY, params


def test_the_task_fails_a_bad_request_without_retries():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="promotion policy 'force' needs a reason"):
        tasks.preflight(DAY, params(promotion_policy="force"), backfill=False)
    assert tasks.preflight(DAY, params(), backfill=True)["train"] is False
