"""The pipeline's environment knobs: each one an environment variable read when a task runs (never
at DAG-parse time), with a default that keeps everything inside the project's ignored ``.local/``
folder. docs/CONFIGURATION.md lists them (a test keeps that table and this module in step).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = PROJECT_ROOT / ".local"


def data_root() -> str:
    """The data root (raw, features, reports), a local folder or ``s3://bucket/prefix``:
    ``$FLIGHT_DELAYS_DATA_ROOT``, default ``.local/data``."""
    return os.environ.get("FLIGHT_DELAYS_DATA_ROOT", str(LOCAL_DIR / "data"))


def storage_conn_id() -> str:
    """The Airflow connection of an object-store data root (an ``aws`` connection: keys, and the
    endpoint as ``extra.endpoint_url`` for a store that is not AWS): ``$FLIGHT_DELAYS_STORAGE_CONN_ID``,
    default ``flight_delays_storage``."""
    return os.environ.get("FLIGHT_DELAYS_STORAGE_CONN_ID", "flight_delays_storage")


def mlflow_tracking_uri() -> str:
    """MLflow's tracking and registry store: ``$MLFLOW_TRACKING_URI``, default SQLite in ``.local/``."""
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{LOCAL_DIR / 'mlflow' / 'mlflow.db'}")


def mlflow_artifact_location() -> str:
    """The artifact location of a new experiment: ``$MLFLOW_ARTIFACT_LOCATION``."""
    return os.environ.get("MLFLOW_ARTIFACT_LOCATION", str(LOCAL_DIR / "mlflow" / "artifacts"))


def mlflow_ui_url() -> str | None:
    """The MLflow UI's address (``$MLFLOW_UI_URL``, else an ``http(s)://`` tracking URI), or None."""
    url = os.environ.get("MLFLOW_UI_URL") or mlflow_tracking_uri()
    return url.rstrip("/") if url.startswith(("http://", "https://")) else None


def code_version() -> str:
    """The version of this code: ``$FLIGHT_DELAYS_CODE_VERSION``, else the git sha of the checkout."""
    if os.environ.get("FLIGHT_DELAYS_CODE_VERSION"):
        return os.environ["FLIGHT_DELAYS_CODE_VERSION"]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
        return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def spark_namespace() -> str:
    """Kubernetes namespace of the SparkApplications (``$SPARK_NAMESPACE``; default ``default``)."""
    return os.environ.get("SPARK_NAMESPACE", "default")
