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
# An xdist worker's __main__ is execnet's bootstrap, with neither __spec__ nor __file__: pyspark.sql.connect
# takes that for its own doctest runner and calls sys.exit(0) when its test-only extras are missing
# (pyspark/sql/connect/utils.py, check_dependencies), which kills the worker as soon as Great Expectations
# probes for Spark Connect. Its other test for a run that is not a doctest is an interactive session's
# sys.ps1; with it, the import fails with the ImportError Great Expectations expects, as under plain pytest.
if "PYTEST_XDIST_WORKER" in os.environ and not hasattr(sys.modules["__main__"], "__file__"):
    sys.ps1 = ""
# py4j logs at INFO from __del__ at interpreter exit, after pytest closed the stream it wrote to.
logging.getLogger("py4j").setLevel(logging.WARNING)


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_SANDBOX, ignore_errors=True)


# ``make test`` runs the suite on two pytest-xdist workers. The control-plane tests share one control
# plane per worker and the end-to-end runs each load the machine fully, so each of these folders runs
# whole on one worker, started first; every other module is a unit of its own, spread over the workers.
HEAVY_GROUPS = ("tests/controlplane/", "tests/e2e/")


def xdist_group(nodeid: str) -> str:
    """The unit of work a test belongs to under xdist: its heavy folder, else its module."""
    return next((group for group in HEAVY_GROUPS if nodeid.startswith(group)), nodeid.split("::")[0])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's ``loadscope`` scheduling, with :func:`xdist_group` as the scope.

    Not ``--dist loadgroup`` with ``xdist_group`` marks: on pytest 9.2 that mode groups nothing
    (pytest-dev/pytest-xdist#1386, it rewrites ``item._nodeid``, which pytest no longer reads).
    """
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    config.option.loadscopereorder = False  # keep the heavy groups first, as collection sorted them
    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config, items) -> None:
    """Leave the ``horovod`` tests out unless asked for: by a ``-m`` that names the marker (``make
    test-horovod``), or by naming their file. Under xdist, put the heavy groups first.

    The Horovod tests need Horovod, which ``make horovod`` builds apart from the rest (about 4
    minutes). Once asked for they fail, not skip, without it: a CI step that forgot to build Horovod
    must not pass.
    """
    if "PYTEST_XDIST_WORKER" in os.environ:
        items.sort(key=lambda item: xdist_group(item.nodeid) not in HEAVY_GROUPS)
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
