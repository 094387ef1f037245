"""A real local Airflow for end-to-end tests, started as ``make airflow`` starts it.

:class:`Launcher` runs ``python -m devtools.local_airflow`` in a session of its own, with an
Airflow home, data root and MLflow store under the test's ``tmp_path`` and a free port, and keeps
track of every process of its tree so a test can prove none is left after SIGINT.
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

from flight_delays import settings
from flight_delays.contract import DAG_ID

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DAG_ID", "TRAINING_RUN_TASK_STATES", "Launcher"]

#: A run that trains, with the pandas validation engine (the Spark validation branch is skipped).
TRAINING_RUN_TASK_STATES = {
    "preflight": "success", "ingest": "success", "choose_validation_engine": "success",
    "submit_validation": "skipped", "wait_for_validation": "skipped", "validate": "success",
    "submit_features": "success", "wait_for_features": "success", "choose_training": "success",
    "submit_training": "success", "wait_for_training": "success", "register": "success",
    "promote": "success", "report": "success",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launcher:
    """``python -m devtools.local_airflow`` in a session of its own, and what it started.

    :param env: set over the launcher's environment (the Kubernetes backend's settings, another DAG
        folder).
    """

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None) -> None:
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
            **(env or {}),
        }
        self.seen: dict[int, tuple[float, str]] = {}  # every process of the tree: create time, command
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devtools.local_airflow", "--port", str(self.port)],
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


def log_in(airflow: Launcher, api: httpx.Client) -> str:
    """Wait for the launcher's banner, log in as the generated admin (Bearer token on ``api``) and
    return the admin's password."""
    airflow.wait_for("the launcher's banner", lambda: "Airflow is ready at" in airflow.text(), timeout=300)
    password_file = airflow.home / "simple_auth_manager_passwords.json.generated"
    password = json.loads(password_file.read_text())["admin"]
    response = api.post("/auth/token", json={"username": "admin", "password": password})
    assert response.status_code == 201, response.text
    api.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return password


def unpause_parsed_dag(airflow: Launcher, api: httpx.Client, dag_id: str = DAG_ID) -> dict:
    """Wait for the DAG processor to parse the DAG (new DAGs start paused), then unpause it."""
    def parsed_dag() -> dict | None:
        response = api.get(f"/api/v2/dags/{dag_id}")
        return response.json() if response.status_code == 200 else None

    dag = airflow.wait_for("the DAG to be parsed", parsed_dag, timeout=120)
    response = api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    assert response.status_code == 200 and response.json()["is_paused"] is False, response.text
    return dag


def create_backfill(api: httpx.Client, body: dict) -> dict:
    """``POST /api/v2/backfills`` (what ``airflow backfill create`` and the UI's Backfill dialog do).

    The launcher's metadata database is PostgreSQL: creation is one transaction, with no lock refusal
    to recover from (SQLite answered 503 "Database is locked" under concurrent access).
    """
    response = api.post("/api/v2/backfills", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def stop_with_sigint(airflow: Launcher) -> None:
    """Ctrl-C: the launcher exits 0 and nothing of its tree is left."""
    airflow.record_tree()
    airflow.process.send_signal(signal.SIGINT)
    assert airflow.process.wait(timeout=120) == 0
    assert airflow.text().rstrip().endswith("Airflow stopped; no process left.")
    time.sleep(1)
    assert airflow.still_alive() == []
