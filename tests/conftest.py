"""Test-wide setup: an isolated embedded default, and one local Spark session per test run.

The environment is set before anything imports Airflow, so no test touches the project's own
``.local/`` (the demo's Airflow home, data root and MLflow store).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from devtools.environment import embedded_default, with_embedded_default

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
_SANDBOX = Path(tempfile.mkdtemp(prefix="flight-delays-tests-"))

# The embedded default (devtools.environment) under the sandbox, whatever the caller's environment
# says, the project kept on PYTHONPATH; plus what only tests set.
os.environ.update({
    **embedded_default(_SANDBOX, python=sys.executable),
    "PYTHONPATH": with_embedded_default(os.environ)["PYTHONPATH"],
    "PYSPARK_DRIVER_PYTHON": sys.executable,
    # The Kubernetes provider's API retries wait 1-15 s by default; the fake API server needs no pause.
    "AIRFLOW__WORKERS__API_RETRY_WAIT_MIN": "0",
    "AIRFLOW__WORKERS__API_RETRY_WAIT_MAX": "0.05",
})
(_SANDBOX / "mlflow").mkdir(parents=True)
# py4j logs at INFO from __del__ at interpreter exit, after pytest closed the stream it wrote to.
logging.getLogger("py4j").setLevel(logging.WARNING)


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_SANDBOX, ignore_errors=True)


def pytest_collection_modifyitems(config, items) -> None:
    """Leave the ``horovod`` tests out unless asked for: by a ``-m`` that names the marker (``make
    test-horovod``), or by naming their file.

    They need Horovod, which ``make horovod`` builds apart from the rest (about 4 minutes). Once asked
    for they fail, not skip, without it: a CI step that forgot to build Horovod must not pass.
    """
    if "horovod" in config.getoption("markexpr"):
        return
    named = {(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args}
    kept, left_out = [], []
    for item in items:
        (left_out if item.get_closest_marker("horovod") and item.path not in named else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every transform test."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.log.level", "WARN")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def crd_schema() -> dict:
    """The v1beta2 schema of the released SparkApplication CRD (../shared/crds)."""
    import yaml

    crd = yaml.safe_load((SHARED_DIR / "crds" / "sparkoperator.k8s.io_sparkapplications.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta2"]
    return version["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module", autouse=True)
def mlflow_tracking_uri_restored():
    """Each test module leaves MLflow's tracking URI as it found it.

    ``mlflow.set_tracking_uri`` also sets ``$MLFLOW_TRACKING_URI`` (for subprocesses), so a module that
    points MLflow at a server it then stops would leave every later module's default on a dead server,
    where MLflow's client retries each request for about four minutes before it gives up.
    """
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if os.environ.get("MLFLOW_TRACKING_URI") != before:
        mlflow.set_tracking_uri(before)  # None unsets the variable too
