"""The DAG in a real Airflow, started as ``make airflow`` starts it, driven through the REST API.

``python -m devtools.local_airflow`` (the launcher of ``make airflow``) runs the api-server,
scheduler, dag-processor and triggerer with the LocalExecutor on PostgreSQL, in an Airflow home, data
root and MLflow store of the test's own, on a free port. The test logs in as the generated admin,
unpauses the DAG, triggers a run for 2013-06-30 with a conf, waits for it and checks what the
scheduler's run did; then it triggers the next day, interrupts Airflow with SIGINT (Ctrl-C) while
that run's Spark job is running, and checks that no process of the tree is left.
"""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING

import httpx
import pytest
from mlflow import MlflowClient

from flight_delays.layout import DataLayout
from flight_delays.report import RunReport
from testing.airflow_harness import (
    DAG_ID,
    TRAINING_RUN_TASK_STATES,
    Launcher,
    healthy,
    log_in,
    stop_with_sigint,
    timings,
    unpause_parsed_dag,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

CONF = {"window_days": 7, "history_days": 3, "validation_days": 2, "test_days": 2, "n_estimators": 20}


def trigger(api: httpx.Client, logical_date: str) -> dict:
    response = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": logical_date, "conf": CONF})
    assert response.status_code == 200, response.text
    return response.json()


def test_make_airflow_runs_a_triggered_run_and_stops_without_leftovers(tmp_path):
    airflow = Launcher(tmp_path)
    airflow.start()
    try:
        with httpx.Client(base_url=airflow.url, timeout=30) as api:
            _run_and_stop(airflow, api, tmp_path)
    except BaseException:
        print(airflow.diagnostics())
        airflow.kill_everything()
        raise


def _run_and_stop(airflow: Launcher, api: httpx.Client, tmp_path: Path) -> None:
    started = time.monotonic()
    password = log_in(airflow, api)
    assert healthy(api)
    # What a user reads: the address, and the admin's generated password with the file that keeps it.
    password_file = airflow.home / "simple_auth_manager_passwords.json.generated"
    assert f"Airflow is ready at {airflow.url}" in airflow.text()
    assert f"user admin, password {password} (generated once, kept in {password_file})" in airflow.text()
    print(f"Airflow ready after {time.monotonic() - started:.0f} s")

    # The launcher reports the DAG once it sees it parsed (it asks the API every 2 s): wait for that
    # line before unpausing, or it would rightly report the DAG unpaused.
    airflow.wait_for("the launcher to report the DAG", lambda: f"{DAG_ID} is loaded" in airflow.text(),
                     timeout=120)
    assert f"{DAG_ID} is loaded and paused" in airflow.text()
    dag = unpause_parsed_dag(airflow, api)
    assert dag["is_paused"] is True  # new DAGs start paused

    # A manual run at logical date T owns the last complete interval before T: 2013-06-30.
    run = trigger(api, "2013-07-01T00:00:00Z")
    assert (run["data_interval_start"], run["data_interval_end"], run["conf"], run["run_type"]) == (
        "2013-06-30T00:00:00Z", "2013-07-01T00:00:00Z", CONF, "manual")
    run_url = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"
    triggered = time.monotonic()
    finished = airflow.wait_for(
        "the run to end", lambda: (r := api.get(run_url).json())["state"] in ("success", "failed") and r,
        timeout=420, every=3)
    print(f"run {run['dag_run_id']} ended {finished['state']} after {time.monotonic() - triggered:.0f} s")
    task_instances = api.get(f"{run_url}/taskInstances").json()["task_instances"]
    print(timings(task_instances))
    states = {ti["task_id"]: ti["state"] for ti in task_instances}
    assert (finished["state"], states) == ("success", TRAINING_RUN_TASK_STATES)
    runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()
    assert [r["dag_run_id"] for r in runs["dag_runs"]] == [run["dag_run_id"]]  # no scheduled run

    # The run used the conf: 7 window days end on 2013-06-30, 3 history days before them.
    report = RunReport.read(DataLayout(tmp_path / "data"), date(2013, 6, 30)).as_dict()
    assert (report["day"], report["days_ingested"], report["validation"]["partitions"]) == (
        "2013-06-30", 10, 21)  # 2013-06-21..30, flights and weather, and the planes table
    assert (report["model"]["version"], report["model"]["alias"]) == ("1", "champion")
    mlflow = MlflowClient(tracking_uri=airflow.env["MLFLOW_TRACKING_URI"])
    mlflow_run = mlflow.get_run(report["model"]["run_id"])
    params = mlflow_run.data.params
    assert {k: params[k] for k in ("window_start", "validation_start", "test_start", "window_end",
                                   "n_estimators")} == {
        "window_start": "2013-06-24", "validation_start": "2013-06-27", "test_start": "2013-06-29",
        "window_end": "2013-06-30", "n_estimators": "20"}
    assert mlflow_run.data.tags["airflow_run_id"] == run["dag_run_id"]
    assert any("org.apache.spark.deploy.SparkSubmit" in command for _, command in airflow.seen.values())

    # Ctrl-C while the next day's Spark job runs: everything stops, the JVM included.
    trigger(api, "2013-07-02T00:00:00Z")
    airflow.wait_for("a spark-submit JVM under the launcher", lambda: any(
        "org.apache.spark.deploy.SparkSubmit" in c for c in airflow.record_tree()), timeout=180, every=1)
    interrupted = time.monotonic()
    stop_with_sigint(airflow)
    print(f"stopped {time.monotonic() - interrupted:.0f} s after SIGINT; {len(airflow.seen)} processes seen")
    assert "Stopping Airflow" in airflow.text()
