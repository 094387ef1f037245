"""The embedded default's environment: one definition, under any local folder, the caller's values kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devtools.environment import embedded_default, with_embedded_default
from tests.conftest import PROJECT_ROOT


def test_everything_it_writes_is_under_the_local_folder():
    env = embedded_default(Path("/work/.local"), python="/venv/bin/python")
    assert env == {
        "AIRFLOW_HOME": "/work/.local/airflow",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[2]"}',
        "FLIGHT_DELAYS_DATA_ROOT": "/work/.local/data",
        "MLFLOW_TRACKING_URI": "sqlite:////work/.local/mlflow/mlflow.db",
        "MLFLOW_ARTIFACT_LOCATION": "/work/.local/mlflow/artifacts",
        "SPARKAPP_LOCAL_STATE_DIR": "/work/.local/spark-applications",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": "/venv/bin/python",
        "PYTHONPATH": f"{PROJECT_ROOT / 'plugins'}:{PROJECT_ROOT}",
    }


def test_its_defaults_are_the_settings_own(monkeypatch):
    from flight_delays import settings
    from flight_delays.settings import LOCAL_DIR

    env = embedded_default()
    for name in ("FLIGHT_DELAYS_DATA_ROOT", "MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    assert (settings.data_root(), settings.mlflow_tracking_uri(), settings.mlflow_artifact_location()) == (
        env["FLIGHT_DELAYS_DATA_ROOT"], env["MLFLOW_TRACKING_URI"], env["MLFLOW_ARTIFACT_LOCATION"])
    assert env["AIRFLOW_HOME"] == str(LOCAL_DIR / "airflow")


def test_the_callers_values_win_and_the_project_stays_importable():
    env = with_embedded_default({"AIRFLOW_HOME": "/mine", "PYTHONPATH": f"/other:{PROJECT_ROOT}"})
    assert env["AIRFLOW_HOME"] == "/mine"
    assert env["PYTHONPATH"] == f"{PROJECT_ROOT / 'plugins'}:/other:{PROJECT_ROOT}"


def test_the_command_runs_with_it():
    probe = ("import json, os; "
             "print(json.dumps({k: os.environ[k] for k in ('AIRFLOW_HOME', 'SPARK_LOCAL_IP')}))")
    env = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_HOME", "SPARK_LOCAL_IP")}
    env["PYTHONPATH"] = f"{PROJECT_ROOT / 'plugins'}:{PROJECT_ROOT}"
    out = subprocess.run([sys.executable, "-m", "devtools.environment", sys.executable, "-c", probe], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out) == {"AIRFLOW_HOME": str(PROJECT_ROOT / ".local" / "airflow"),
                               "SPARK_LOCAL_IP": "127.0.0.1"}
