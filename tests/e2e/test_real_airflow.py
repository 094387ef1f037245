"""The DAG in a real Airflow, started as ``make airflow`` starts it, driven through the REST API.

``python -m flight_delays.local_airflow`` (the launcher of ``make airflow``) runs the api-server,
scheduler, dag-processor and triggerer with the LocalExecutor on SQLite, in an Airflow home, data
root and MLflow store of the test's own, on a free port. The test logs in as the generated admin,
unpauses the DAG, triggers a run for 2013-06-30 with a conf, waits for it and checks what the
scheduler's run did; then it triggers the next day, interrupts Airflow with SIGINT (Ctrl-C) while
that run's Spark job is running, and checks that no process of the tree is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

import httpx
import psutil
import pytest
from mlflow import MlflowClient

from flight_delays import settings

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

DAG_ID = "flight_delay_retraining"
CONF = {"window_days": 7, "history_days": 3, "validation_days": 2, "test_days": 2, "n_estimators": 20}
#: The pandas validation engine: the Spark validation branch is skipped.
EXPECTED_TASK_STATES = {
    "ingest": "success", "choose_validation_engine": "success", "submit_validation": "skipped",
    "wait_for_validation": "skipped", "validate": "success", "submit_features": "success",
    "wait_for_features": "success", "submit_training": "success", "wait_for_training": "success",
    "register": "success", "promote": "success", "report": "success",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launcher:
    """``python -m flight_delays.local_airflow`` in a session of its own, and what it started."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "airflow"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = tmp_path / "launcher.out"
        (tmp_path / "mlflow").mkdir()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "FLIGHT_DELAYS_DATA_ROOT": str(tmp_path / "data"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_LOCATION": str(tmp_path / "mlflow" / "artifacts"),
            "SPARKAPP_LOCAL_STATE_DIR": str(tmp_path / "spark-applications"),
            "PYTHONPATH": f"{settings.PROJECT_ROOT / 'plugins'}{os.pathsep}{settings.PROJECT_ROOT}",
            # Unpausing would otherwise start the scheduled run of yesterday's interval (replaying that
            # day of 2013 with the default 28-day window) before or beside the run under test.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        self.seen: dict[int, tuple[float, str]] = {}  # every process of the tree: create time, command
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flight_delays.local_airflow", "--port", str(self.port)],
                cwd=settings.PROJECT_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def record_tree(self) -> list[str]:
        """Remember every live process under the launcher; return their commands."""
        commands = []
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return commands
        for child in children:
            try:
                self.seen.setdefault(child.pid, (child.create_time(), " ".join(child.cmdline())))
                commands.append(" ".join(child.cmdline()))
            except psutil.Error:
                continue
        return commands

    def wait_for(self, what: str, check, timeout: float, every: float = 2.0):
        """Poll ``check`` until it returns something truthy; fail if the launcher exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.record_tree()
            if self.process.poll() is not None:
                pytest.fail(f"the launcher exited with {self.process.returncode} while waiting for {what}")
            if result := check():
                return result
            time.sleep(every)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    def still_alive(self) -> list[str]:
        """What is left on the machine of the launcher's tree: seen processes, its session, its home."""
        left = []
        for pid, (created, command) in self.seen.items():
            try:
                if psutil.Process(pid).create_time() == created:
                    left.append(f"{pid} (seen running under the launcher) {command[:150]}")
            except psutil.NoSuchProcess:
                continue
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                in_session = os.getsid(process.pid) == self.process.pid
                in_home = process.environ().get("AIRFLOW_HOME") == str(self.home)
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
            if in_session or in_home:
                left.append(f"{process.pid} (session {in_session}, AIRFLOW_HOME {in_home}) "
                            f"{' '.join(process.info['cmdline'] or [])[:150]}")
        return left

    def diagnostics(self) -> str:
        parts = [f"--- launcher output ({self.output})\n{self.text()[-5000:]}"]
        for log in sorted((self.home / "logs" / "local-airflow").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-40:]
            parts.append(f"--- {log.name} (last 40 lines)\n" + "\n".join(line[:400] for line in lines))
        for log in sorted(self.home.glob("logs/dag_id=*/run_id=*/task_id=*/*.log")):
            if '"level":"error"' in (text := log.read_text(errors="replace")):
                parts.append(f"--- {log.relative_to(self.home)} (last 20 lines)\n"
                             + "\n".join(line[:400] for line in text.splitlines()[-20:]))
        return "\n".join(parts)

    def kill_everything(self) -> None:
        """Last resort after a failure: nothing of this test may outlive it."""
        if self.process is None:
            return
        for pid in self.seen:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                continue
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def healthy(api: httpx.Client) -> bool:
    try:
        report = api.get("/api/v2/monitor/health").json()
    except (httpx.HTTPError, ValueError):
        return False
    return all(report.get(c, {}).get("status") == "healthy"
               for c in ("metadatabase", "scheduler", "triggerer", "dag_processor"))


def timings(task_instances: list[dict]) -> str:
    """Each task's wait in the queue and run time, in the order they started (diagnostics)."""
    def seconds(start: str | None, end: str | None) -> str:
        if not (start and end):
            return "-"
        return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.1f}"

    rows = sorted(task_instances, key=lambda ti: ti["start_date"] or "~")
    return "\n".join(f"  {ti['task_id']:<26} {ti['state']:<8} try {ti['try_number']}  queued "
                     f"{seconds(ti['queued_when'], ti['start_date']):>5} s  ran "
                     f"{seconds(ti['start_date'], ti['end_date']):>5} s" for ti in rows)


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
    airflow.wait_for("the launcher's banner", lambda: "Airflow is ready at" in airflow.text(), timeout=300)
    assert healthy(api)
    # What a user reads: the address, and the admin's generated password with the file that keeps it.
    password_file = airflow.home / "simple_auth_manager_passwords.json.generated"
    password = json.loads(password_file.read_text())["admin"]
    assert f"Airflow is ready at {airflow.url}" in airflow.text()
    assert f"user admin, password {password} (generated once, kept in {password_file})" in airflow.text()
    print(f"Airflow ready after {time.monotonic() - started:.0f} s")

    response = api.post("/auth/token", json={"username": "admin", "password": password})
    assert response.status_code == 201, response.text
    api.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def parsed_dag() -> dict | None:
        response = api.get(f"/api/v2/dags/{DAG_ID}")
        return response.json() if response.status_code == 200 else None

    dag = airflow.wait_for("the DAG to be parsed", parsed_dag, timeout=120)
    assert dag["is_paused"] is True  # new DAGs start paused
    airflow.wait_for("the launcher's DAG line", lambda: f"{DAG_ID} is loaded and paused" in airflow.text(),
                     timeout=30)
    response = api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert response.status_code == 200 and response.json()["is_paused"] is False, response.text

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
    assert (finished["state"], states) == ("success", EXPECTED_TASK_STATES)
    runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()
    assert [r["dag_run_id"] for r in runs["dag_runs"]] == [run["dag_run_id"]]  # no scheduled run

    # The run used the conf: 7 window days end on 2013-06-30, 3 history days before them.
    report = json.loads((tmp_path / "data" / "reports" / "date=2013-06-30" / "report.json").read_text())
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
    airflow.record_tree()
    interrupted = time.monotonic()
    airflow.process.send_signal(signal.SIGINT)
    assert airflow.process.wait(timeout=120) == 0
    print(f"stopped {time.monotonic() - interrupted:.0f} s after SIGINT; {len(airflow.seen)} processes seen")
    assert airflow.text().rstrip().endswith("Airflow stopped; no process left.")
    assert "Stopping Airflow" in airflow.text()
    time.sleep(1)
    assert airflow.still_alive() == []
