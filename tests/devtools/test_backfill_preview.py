"""The backfill preview (``make backfill-preview``) and the backfill manifests preview."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from devtools.backfill_preview import backfill_dates, preview
from devtools.demo import load_dag
from devtools.manifests import render_run
from flight_delays.ingest import ingest_day
from flight_delays.layout import DataLayout


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> DataLayout:
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "data"))
    return DataLayout(tmp_path / "data")


def table(text: str) -> list[str]:
    """The preview's run lines, columns separated by one space."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("run (data interval)")) + 1
    return [" ".join(line.split()) for line in lines[start:lines.index("", start)]]


def test_the_runs_are_those_airflow_creates_one_day_each():
    utc = timezone.utc
    assert backfill_dates(load_dag(), date(2013, 6, 1), date(2013, 6, 3)) == [
        (datetime(2013, 6, d, tzinfo=utc), datetime(2013, 6, d + 1, tzinfo=utc)) for d in (1, 2, 3)]


def test_an_empty_data_root_fills_in_history_once_and_trains_nothing(data_root):
    text = preview(date(2013, 6, 1), date(2013, 6, 4), {"history_days": 3})
    assert table(text) == [
        "2013-06-01..2013-06-02 2013-05-29..2013-06-01 (4 day(s)) 2013-06-01 no",
        "2013-06-02..2013-06-03 2013-06-02 2013-06-02 no",
        "2013-06-03..2013-06-04 2013-06-03 2013-06-03 no",
        "2013-06-04..2013-06-05 2013-06-04 2013-06-04 no",
    ]
    lines = text.splitlines()
    assert lines[0] == ("Backfill of flight_delay_retraining: 4 run(s), logical dates "
                        f"2013-06-01..2013-06-04, data root {data_root.root.as_uri()}")
    assert '"history_days": 3' in lines[1] and '"backfill_training": false' in lines[1]
    assert lines[2] == "training: off: runs stop after the features (set backfill_training to train)"
    assert lines[-1] == ("  airflow backfill create --dag-id flight_delay_retraining --from-date 2013-06-01 "
                         "--to-date 2013-06-04 --max-active-runs 2 --dag-run-conf '{\"history_days\": 3}'")
    assert not data_root.root.exists()  # a preview writes nothing


def test_with_training_each_run_needs_its_window(data_root):
    ingest_day(data_root, date(2013, 5, 30))  # already there: not ingested again
    text = preview(date(2013, 6, 1), date(2013, 6, 2),
                   {"backfill_training": True, "window_days": 7, "history_days": 3})
    assert table(text) == [
        "2013-06-01..2013-06-02 2013-05-23..2013-05-29, 2013-05-31..2013-06-01 (9 day(s)) "
        "2013-05-26..2013-06-01 (7 day(s)) yes",
        "2013-06-02..2013-06-03 2013-06-02 2013-06-02 yes",
    ]
    assert text.splitlines()[2].startswith("training: ON (backfill_training)")


def test_a_bad_conf_is_refused_naming_the_param(data_root):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="history_days"):
        preview(date(2013, 6, 1), date(2013, 6, 2), {"history_days": 0})


def test_a_backfill_run_submits_no_training_unless_asked(data_root):
    assert sorted(render_run(date(2013, 6, 30), backfill=True)) == ["submit_features"]
    assert sorted(render_run(date(2013, 6, 30), {"backfill_training": True}, backfill=True)) == [
        "submit_features", "submit_training"]
    assert sorted(render_run(date(2013, 6, 30))) == ["submit_features", "submit_training"]
    features = render_run(date(2013, 6, 30), {"history_days": 3}, backfill=True)["submit_features"]
    arguments = features["spec"]["arguments"]
    flags = ("--start-date", "--end-date", "--history-start")
    assert [arguments[arguments.index(flag) + 1] for flag in flags] == [
        "2013-06-30", "2013-06-30", "2013-06-27"]
