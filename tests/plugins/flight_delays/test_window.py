"""Which days a run processes: the replay calendar, the run window and the incremental planner
(features are incremental: which days a run's feature job computes)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest

from flight_delays.layout import DataLayout
from flight_delays.publication import MANIFESTS, publish
from flight_delays.window import RunWindow, feature_plan, source_day

DAY = date(2013, 6, 30)
WINDOW = RunWindow.for_day(DAY, window_days=28, history_days=14)  # features for 06-03 .. 06-30


@pytest.fixture
def layout(tmp_path) -> DataLayout:
    return DataLayout(tmp_path / "data")


def with_features(layout: DataLayout, *days: date) -> None:
    for day in days:
        publish(layout.feature_partition(day), {"part-00000.parquet": b""}, writer="test", meta={"rows": 0})


def window_days() -> list[date]:
    return [WINDOW.train_start + timedelta(days=i) for i in range(28)]


def test_the_first_run_computes_the_whole_window(layout):
    assert feature_plan(layout, WINDOW, WINDOW.raw_days(), 14) == {
        "feature_start": "2013-06-03", "feature_history_start": "2013-05-20"}


def test_a_nightly_run_computes_its_own_day_only(layout):
    with_features(layout, *window_days()[:-1])  # everything up to yesterday
    assert feature_plan(layout, WINDOW, [DAY], 14) == {
        "feature_start": "2013-06-30", "feature_history_start": "2013-06-16"}


def test_a_missing_day_is_filled_in(layout):
    with_features(layout, *(d for d in window_days() if d != date(2013, 6, 25)))
    assert feature_plan(layout, WINDOW, [DAY], 14)["feature_start"] == "2013-06-25"


def test_a_reingested_day_makes_the_days_whose_history_it_is_stale(layout):
    with_features(layout, *window_days())
    # Raw 06-10 changed: the features of 06-10 .. 06-24 read it (14 days of history).
    assert feature_plan(layout, WINDOW, [date(2013, 6, 10), DAY], 14)["feature_start"] == "2013-06-10"
    # A history day before the window changed: the window's first days read it.
    assert feature_plan(layout, WINDOW, [date(2013, 5, 25), DAY], 14)["feature_start"] == "2013-06-03"
    # Too old to matter: 05-19 is more than 14 days before the window's first day.
    assert feature_plan(layout, WINDOW, [date(2013, 5, 19), DAY], 14)["feature_start"] == "2013-06-30"


def test_files_no_manifest_names_are_not_features(layout):
    with_features(layout, *window_days()[:-1])
    shutil.rmtree(layout.feature_partition(date(2013, 6, 29)).joinpath(MANIFESTS).path)
    assert feature_plan(layout, WINDOW, [DAY], 14)["feature_start"] == "2013-06-29"


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
