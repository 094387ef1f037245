"""The environment knobs and their defaults."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("ui", "tracking", "expected"), [
    (None, "sqlite:////x/mlflow.db", None),  # the embedded default: no UI to link to
    (None, "http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
    ("https://mlflow.example.com/", "http://mlflow.mlflow.svc:5000", "https://mlflow.example.com"),
])
def test_mlflow_ui_is_the_configured_address_or_an_http_tracking_server(monkeypatch, ui, tracking, expected):
    from flight_delays import settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    if ui:
        monkeypatch.setenv("MLFLOW_UI_URL", ui)
    else:
        monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    assert settings.mlflow_ui_url() == expected
