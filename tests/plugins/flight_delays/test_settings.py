from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flight_delays.settings import DataLayout, RunWindow, source_day


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2013, 6, 30), date(2013, 6, 30)),
        (date(2026, 11, 22), date(2013, 11, 22)),
        (date(2012, 1, 1), date(2013, 1, 1)),
        (date(2028, 2, 29), date(2013, 2, 28)),
    ],
)
def test_source_day_replays_the_same_day_of_2013(day, expected):
    assert source_day(day) == expected


def test_run_window_of_a_mid_year_day():
    window = RunWindow.for_day(date(2013, 6, 30), window_days=28, history_days=14)
    assert window == RunWindow(day=date(2013, 6, 30), train_start=date(2013, 6, 3),
                               history_start=date(2013, 5, 20))
    raw = window.raw_days()
    assert (raw[0], raw[-1], len(raw)) == (date(2013, 5, 20), date(2013, 6, 30), 42)


def test_run_window_is_clamped_to_the_first_day_of_data():
    window = RunWindow.for_day(date(2013, 1, 10), window_days=28, history_days=14)
    assert window.as_dict() == {"day": "2013-01-10", "train_start": "2013-01-01",
                                "history_start": "2013-01-01"}


def test_data_layout_paths():
    layout = DataLayout(Path("/data"))
    day = date(2013, 6, 30)
    assert str(layout.raw_partition("flights", day)) == "/data/raw/flights/date=2013-06-30"
    assert str(layout.reference("planes")) == "/data/reference/planes"
    assert str(layout.feature_partition(day)) == "/data/features/date=2013-06-30"
    assert str(layout.report(day)) == "/data/reports/date=2013-06-30/report.json"


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


def test_mlflow_run_url_names_the_runs_experiment(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from flight_delays import settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    experiment = client.create_experiment("flight-delays", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment).info.run_id
    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    assert settings.mlflow_run_url(run) is None
    monkeypatch.setenv("MLFLOW_UI_URL", "https://mlflow.example.com")
    assert settings.mlflow_run_url(run) == f"https://mlflow.example.com/#/experiments/{experiment}/runs/{run}"
