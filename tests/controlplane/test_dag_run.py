"""The whole DAG on the Kubernetes backend against the real control plane: deploy/ applied, the
worker's service-account token, the real Spark Operator submitting each stage's SparkApplication
(its spark-submit creating the driver pod, its webhook mutating it), the deferrable sensors waiting
in the (in-process) triggerer. Pods are simulated: each driver pod on its KWOK node runs its
application's manifest with the local backend (``DriverExecutor``), so the computation is real and
the operator itself records COMPLETED from the driver pod's exit.

It proves that the manifests the DAG renders at run time, with deploy/'s pod settings (the data
volume's claim, the Secrets as environment, event logs), are accepted by the real API server, its
admission and the operator's webhook; that deploy/'s RBAC lets the worker do all it does; that the
operator's real state machine drives the sensors to success; and that the run's report and MLflow
record both stages. (The fake API server's executing operator, ``testing/kubernetes_api.py``, is kept
for fault injection: ``tests/scenarios``.)
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date

import pytest
from mlflow import MlflowClient

from devtools.demo import run_dag
from flight_delays import settings
from flight_delays.contract import APPLICATION_TAG
from flight_delays.layout import DataLayout
from sparkapp import states
from testing.controlplane.pods import DriverExecutor

pytestmark = pytest.mark.controlplane


@pytest.fixture
def cluster(shared_cluster, tmp_path, monkeypatch):
    # what deploy/ gives the workers, with this machine's paths and MLflow for the cluster's
    env = {**shared_cluster.worker_environment(),
           "FLIGHT_DELAYS_DATA_ROOT": str(tmp_path / "data"), "SPARKAPP_DATA_MOUNT": str(tmp_path / "data"),
           "SPARK_EVENT_LOG_DIR": (tmp_path / "spark-events").as_uri(),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "MLFLOW_ARTIFACT_LOCATION": str(tmp_path / "artifacts")}
    env.pop("MLFLOW_S3_ENDPOINT_URL", None)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "spark-events").mkdir()
    subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)
    with DriverExecutor(shared_cluster.plane, [shared_cluster.namespace], run_locally=True) as executor:
        yield shared_cluster.history, executor
        shared_cluster.remove_applications()


def stored_applications(shared_cluster, names: set[str]) -> dict[str, dict]:
    """The SparkApplications ``names`` as the API server stores them (read as admin)."""
    from kubernetes import client

    with shared_cluster.plane.api_client() as api:
        custom = client.CustomObjectsApi(api)
        return {name: custom.get_namespaced_custom_object("sparkoperator.k8s.io", "v1beta2",
                                                          shared_cluster.namespace, "sparkapplications", name)
                for name in names}


def test_dag_runs_on_the_real_control_plane(cluster, shared_cluster, tmp_path):
    history, executor = cluster
    dag_run = run_dag(date(2013, 3, 15), {"window_days": 14, "history_days": 7})  # 8 training days
    assert dag_run.state == "success", executor.errors

    names = history.names("SparkApplication", "features-") | history.names("SparkApplication", "train-")
    assert sorted(n.rsplit("-", 2)[0] for n in names) == ["features", "train"]
    for name in names:  # one application per stage, created once, ended by the operator as COMPLETED
        assert history.created("SparkApplication", name) == 1
        assert history.states(name)[-1] == states.COMPLETED
        assert "SUBMISSION_FAILED" not in history.states(name)
    assert sorted(run.application for run in executor.runs) == sorted(names)
    assert {run.outcome for run in executor.runs} == {"COMPLETED"}

    applications = stored_applications(shared_cluster, names)
    (features,) = [a for n, a in applications.items() if n.startswith("features-")]
    assert features["spec"]["arguments"][:4] == ["--data-root", settings.data_root(),
                                                 "--start-date", "2013-03-02"]
    settings_ = shared_cluster.platform.settings()  # deploy/'s pod settings, rendered at run time
    secrets = [{"secretRef": {"name": n}} for n in settings_["SPARKAPP_ENV_SECRETS"].split(",")]
    for app in applications.values():
        spec = app["spec"]
        assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {
            "claimName": settings_["SPARKAPP_DATA_CLAIM"]}}]
        assert spec["driver"]["envFrom"] == spec["executor"]["envFrom"] == secrets
        assert spec["sparkConf"]["spark.eventLog.enabled"] == "true"
        assert spec["sparkConf"]["spark.eventLog.dir"] == (tmp_path / "spark-events").as_uri()
    # Spark 4 rolls its event logs by default: one directory per application, which the history
    # server reads
    event_logs = sorted(p.name for p in (tmp_path / "spark-events").iterdir())
    assert len(event_logs) == 2 and all(n.startswith("eventlog_v2_local-") for n in event_logs), event_logs

    report = json.loads(DataLayout.from_env().report(date(2013, 3, 15)).read_text())
    assert sorted(report["cost"]["stages"]) == ["features", "training"]
    assert {c["application"] for c in report["cost"]["stages"].values()} == names
    assert report["model"]["alias"] == "champion" and report["model"]["version"] == "1"
    assert 0.6 <= report["test_metrics"]["test_auc"] <= 0.95
    run = MlflowClient(tracking_uri=settings.mlflow_tracking_uri()).get_run(report["model"]["run_id"])
    assert run.data.tags[APPLICATION_TAG] in names
