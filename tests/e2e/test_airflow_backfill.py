"""A backfill in a real Airflow: 4 days, two runs at a time, then the same backfill reprocessed.

Airflow is started as ``make airflow`` starts it (:mod:`testing.airflow_harness`). The backfill is
created through ``POST /api/v2/backfills`` (what ``airflow backfill create`` and the UI's Backfill
dialog do), after its dry run. Every run must succeed without training (a backfill's default),
leave raw and feature partitions with exactly the rows of its day, and promote no model; the same
backfill with ``reprocess_behavior: completed`` must leave identical partitions.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date, datetime, timedelta

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from flight_delays import partitions
from flight_delays.ingest import DAILY_DATASETS, FLIGHTS, source_rows
from flight_delays.layout import DATA_FILE, DataLayout
from flight_delays.publication import latest
from testing.airflow_harness import (
    DAG_ID,
    TRAINING_RUN_TASK_STATES,
    Launcher,
    create_backfill,
    log_in,
    stop_with_sigint,
    timings,
    unpause_parsed_dag,
)

pytestmark = pytest.mark.e2e

#: Four days: enough for two runs at a time to overlap and to queue behind each other, at half the cost
#: of a week (two backfills of seven days took 590 s of the suite).
DAYS = [date(2013, 6, 1) + timedelta(days=i) for i in range(4)]
CONF = {"history_days": 3}
BACKFILL = {"dag_id": DAG_ID, "from_date": "2013-06-01T00:00:00Z", "to_date": "2013-06-04T00:00:00Z",
            "max_active_runs": 2, "dag_run_conf": CONF}
#: A backfill run trains nothing unless its conf sets backfill_training.
EXPECTED_TASK_STATES = {**TRAINING_RUN_TASK_STATES, **dict.fromkeys(
    ("submit_training", "wait_for_training", "register", "promote"), "skipped")}


def test_a_four_day_backfill_two_at_a_time_then_reprocessed(tmp_path):
    airflow = Launcher(tmp_path)
    airflow.start()
    try:
        with httpx.Client(base_url=airflow.url, timeout=30) as api:
            log_in(airflow, api)
            unpause_parsed_dag(airflow, api)
            _backfill_twice(airflow, api, DataLayout(tmp_path / "data"))
            stop_with_sigint(airflow)
    except BaseException:
        print(airflow.diagnostics())
        airflow.kill_everything()
        raise


def _backfill_twice(airflow: Launcher, api: httpx.Client, layout: DataLayout) -> None:
    # The dry run: what the backfill would create, before anything runs.
    response = api.post("/api/v2/backfills/dry_run", json=BACKFILL)
    assert response.status_code == 200, response.text
    assert [r["logical_date"] for r in response.json()["backfills"]] == [
        f"{d.isoformat()}T00:00:00Z" for d in DAYS]

    first = run_backfill(airflow, api, BACKFILL)
    assert max_concurrent(first) == 2  # max_active_runs 2, and the scheduler used both
    for day in DAYS:
        partitions = partition_rows(layout, day)
        source = source_rows(FLIGHTS, day)
        assert partitions == {
            "flights": len(source), "weather": len(source_rows("weather", day)),
            "features": int(source["arr_delay"].notna().sum()),
        }, day
    # No model: a backfill run trains, registers and promotes nothing.
    mlflow = MlflowClient(tracking_uri=airflow.env["MLFLOW_TRACKING_URI"])
    assert mlflow.search_registered_models() == []
    before = {day: fingerprint(layout, day) for day in DAYS}

    # The same backfill again, reprocessing the completed runs: the same partitions, no duplicates.
    second = run_backfill(airflow, api, {**BACKFILL, "reprocess_behavior": "completed"})
    assert sorted(r["logical_date"] for r in second) == sorted(r["logical_date"] for r in first)
    after = {day: fingerprint(layout, day) for day in DAYS}
    assert after == before
    assert mlflow.search_registered_models() == []


def run_backfill(airflow: Launcher, api: httpx.Client, body: dict) -> list[dict]:
    """Create the backfill, wait for it to complete, check its runs; return them."""
    backfill = create_backfill(api, body)
    started = time.monotonic()
    airflow.wait_for("the backfill to complete", lambda: api.get(
        f"/api/v2/backfills/{backfill['id']}").json()["completed_at"], timeout=900, every=5)
    print(f"backfill {backfill['id']} completed after {time.monotonic() - started:.0f} s")
    runs = [r for r in api.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]
            if r["run_type"] == "backfill"]
    assert sorted(r["logical_date"] for r in runs) == [f"{d.isoformat()}T00:00:00Z" for d in DAYS]
    for run in runs:
        url = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances"
        task_instances = api.get(url).json()["task_instances"]
        states = {ti["task_id"]: ti["state"] for ti in task_instances}
        if (run["state"], states) != ("success", EXPECTED_TASK_STATES):
            print(timings(task_instances))
        assert (run["state"], run["conf"], states) == ("success", CONF, EXPECTED_TASK_STATES), run
    return runs


def max_concurrent(runs: list[dict]) -> int:
    """The most runs that were running at the same moment."""
    events = sorted([(datetime.fromisoformat(r["start_date"]), 1) for r in runs]
                    + [(datetime.fromisoformat(r["end_date"]), -1) for r in runs])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def raw_data(layout: DataLayout, dataset: str, day: date):
    """The data file of the raw partition's current publication."""
    folder = layout.raw_partition(dataset, day)
    return latest(folder).path(folder, DATA_FILE)


def partition_rows(layout: DataLayout, day: date) -> dict[str, int]:
    rows = {dataset: pq.ParquetFile(raw_data(layout, dataset, day).path).metadata.num_rows
            for dataset in DAILY_DATASETS}
    rows["features"] = sum(pq.ParquetFile(f.path).metadata.num_rows for f in feature_files(layout, day))
    return rows


def feature_files(layout: DataLayout, day: date) -> list:
    return partitions.feature_files(layout.feature_partition(day))


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(layout: DataLayout, day: date) -> dict:
    """What must not change when a day is reprocessed: the raw files' bytes, and the feature
    partition's file count, rows and content (Spark names its files anew on every write)."""
    raw = {dataset: sha256(raw_data(layout, dataset, day)) for dataset in DAILY_DATASETS}
    files = feature_files(layout, day)
    # Each file on its own: a list of paths would make pyarrow read date=... folders as a partition column.
    features = pd.concat([pq.ParquetFile(f.path).read().to_pandas() for f in files]) if files else None
    content = (hashlib.sha256(features.sort_values(list(features.columns)).to_csv(index=False).encode())
               .hexdigest() if features is not None else None)
    return {"raw": raw, "feature_files": len(files), "feature_rows": partition_rows(layout, day)["features"],
            "features": content}
