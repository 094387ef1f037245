"""The local Airflow launcher: the components' environment, and stopping a process tree cleanly.

Stopping is tested on stand-in components that behave like Airflow's where it matters: a scheduler
that waits for its running task (as the LocalExecutor's shutdown does), a task in its own process
group with a child process (the task supervisor's layout, ``spark-submit``'s JVM), a component that
ignores SIGTERM and one that leaves an orphan behind. The real components are started, and
stopped, by ``tests/e2e/test_real_airflow.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from devtools import local_airflow
from flight_delays import settings

ROOT = settings.PROJECT_ROOT


def test_environment_keeps_the_callers_embedded_default_and_sets_the_server():
    spark = '{"conn_type": "spark", "host": "local[4]"}'
    base = {"AIRFLOW_HOME": "/x/airflow", "AIRFLOW_CONN_SPARK_DEFAULT": spark,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "PYTHONPATH": f"{ROOT / 'plugins'}:/other",
            "PATH": "/usr/bin", "AIRFLOW__CORE__PARALLELISM": "2"}
    env = local_airflow.airflow_environment(base, host="127.0.0.1", port=18081)
    bin_dir = str(Path(sys.executable).parent)
    assert {k: v for k, v in env.items() if k not in base} == {
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "FLIGHT_DELAYS_DATA_ROOT": str(ROOT / ".local" / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{ROOT / '.local' / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_LOCATION": str(ROOT / ".local" / "mlflow" / "artifacts"),
        "SPARKAPP_LOCAL_STATE_DIR": str(ROOT / ".local" / "spark-applications"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "AIRFLOW__CORE__AUTH_MANAGER": local_airflow.SIMPLE_AUTH_MANAGER,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": "18081",
        "AIRFLOW__API__BASE_URL": "http://127.0.0.1:18081",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:18081/execution/",
    }
    assert {k: env[k] for k in base} == {
        "AIRFLOW_HOME": "/x/airflow",
        "AIRFLOW_CONN_SPARK_DEFAULT": spark,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",  # forced: the launcher runs tasks locally
        "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}:/other",
        "PATH": f"{bin_dir}:/usr/bin",
        "AIRFLOW__CORE__PARALLELISM": "2",
    }


def test_environment_defaults_to_the_projects_local_folder():
    env = local_airflow.airflow_environment({}, host="127.0.0.1", port=8080)
    assert env["AIRFLOW_HOME"] == str(ROOT / ".local" / "airflow")
    assert json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"]) == {"conn_type": "spark", "host": "local[2]"}
    assert env["AIRFLOW__CORE__PARALLELISM"] == "8"
    assert env["PYTHONPATH"] == f"{ROOT / 'plugins'}:{ROOT}"
    home = ROOT / ".local" / "airflow"
    assert local_airflow.password_file(env) == home / "simple_auth_manager_passwords.json.generated"
    configured = {**env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/p.json"}
    assert local_airflow.password_file(configured) == Path("/p.json")


# Stand-ins for the components; each writes what happened to it under MARKS.
TASK = """
import pathlib, signal, subprocess, sys, time
marks = pathlib.Path(sys.argv[1])
jvm = subprocess.Popen(["sleep", "600"])  # in the task's process group, like spark-submit's JVM
def on_term(*_):
    (marks / "task-terminated").write_text("")
    jvm.wait()
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
(marks / "task-started").write_text(str(jvm.pid))
while True:
    time.sleep(1)
"""
SCHEDULER = """
import pathlib, signal, subprocess, sys, time
marks = pathlib.Path(sys.argv[1])
task = subprocess.Popen([sys.executable, "-c", sys.argv[2], str(marks)], process_group=0)
def on_term(*_):
    task.wait()  # the LocalExecutor's end() waits for running tasks
    (marks / "scheduler-exited").write_text(str(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
while True:
    time.sleep(1)
"""
DAG_PROCESSOR = """
import pathlib, subprocess, sys, time
marks = pathlib.Path(sys.argv[1])
# A child that starts a grandchild and exits at once: the grandchild is orphaned.
subprocess.run([sys.executable, "-c", "import subprocess, sys; "
                "open(sys.argv[1], 'w').write(str(subprocess.Popen(['sleep', '600']).pid))",
                str(marks / "orphan")], check=True)
while True:
    time.sleep(1)
"""
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(1)
"""
API_SERVER = """
import pathlib, signal, sys, time
marks = pathlib.Path(sys.argv[1])
def on_term(*_):
    (marks / "api-server-terminated").write_text(str(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
while True:
    time.sleep(1)
"""
DRIVER = """
import json, pathlib, subprocess, sys, time
from devtools import local_airflow
marks, commands, hurry = pathlib.Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3] == "hurry"
local_airflow.become_subreaper()
# Not Airflow's (the metadata database's server, stopped after Airflow): stopping leaves it alone.
database = subprocess.Popen(["sleep", "600"])
airflow = local_airflow.LocalAirflow(env={"PATH": "/usr/bin:/bin"}, log_dir=marks / "logs", commands=commands,
                                     not_airflow=lambda: {database.pid})
airflow.start()
deadline = time.monotonic() + 30
while not ((marks / "task-started").exists() and (marks / "orphan").exists()) and time.monotonic() < deadline:
    time.sleep(0.1)
seen = [p.pid for p in airflow.descendants()]
started = time.monotonic()
killed = airflow.stop(grace=3, hurry=lambda: hurry)
spared = database.poll() is None
database.kill()
print(json.dumps({"seen": seen, "killed": killed, "exit_codes": airflow.exited(),
                  "seconds": time.monotonic() - started, "database": database.pid, "spared": spared,
                  "left": [p.pid for p in airflow.descendants()]}))
"""


def stop_stand_ins(tmp_path: Path, how: str) -> tuple[dict, int]:
    """Start the stand-ins under a launcher of their own, stop them; its report and session id."""
    def component(code: str, *extra: str) -> list[str]:
        return [sys.executable, "-c", textwrap.dedent(code), str(tmp_path), *extra]

    commands = {"api-server": component(API_SERVER), "scheduler": component(SCHEDULER, TASK),
                "dag-processor": component(DAG_PROCESSOR), "triggerer": component(STUBBORN)}
    driver = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(tmp_path), json.dumps(commands), how],
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    stdout, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 0, stderr
    return json.loads(stdout), driver.pid


def test_stop_terminates_tasks_first_then_the_api_server_and_kills_what_is_left(tmp_path):
    result, session = stop_stand_ins(tmp_path, "graceful")

    jvm, orphan = int((tmp_path / "task-started").read_text()), int((tmp_path / "orphan").read_text())
    assert {jvm, orphan} <= set(result["seen"])  # the orphan was adopted: the driver is the subreaper
    assert result["database"] not in result["seen"] and result["spared"]
    assert (tmp_path / "task-terminated").exists()  # the task's group got SIGTERM, its handler ran
    # The API server is stopped only after the scheduler, whose running task could still report to it.
    assert float((tmp_path / "api-server-terminated").read_text()) >= \
        float((tmp_path / "scheduler-exited").read_text())
    # SIGKILL only for what ignored SIGTERM (the stubborn triggerer) and what nothing stopped (the orphan).
    assert sorted(line.split(" ", 1)[1].split()[0] for line in result["killed"]) == [sys.executable, "sleep"]
    assert [int(line.split()[0]) for line in result["killed"] if " sleep " in line] == [orphan]
    assert result["exit_codes"] == {"api-server": 0, "scheduler": 0, "dag-processor": -15, "triggerer": -9}
    assert result["left"] == []
    # Nothing of the driver's session is left on the machine.
    assert [p.pid for p in psutil.process_iter() if _session(p.pid) == session] == []


def test_a_second_ctrl_c_kills_everything_at_once(tmp_path):
    result, session = stop_stand_ins(tmp_path, "hurry")

    assert result["seconds"] < 3  # no grace period waited for
    assert not (tmp_path / "task-terminated").exists()
    assert len(result["killed"]) == 7  # 4 components, the task and its child, the orphan
    assert result["spared"]  # not the database's server
    assert result["exit_codes"] == dict.fromkeys(local_airflow.COMPONENTS, -9)
    assert result["left"] == []
    assert [p.pid for p in psutil.process_iter() if _session(p.pid) == session] == []


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None
