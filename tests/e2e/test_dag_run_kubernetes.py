"""The whole DAG on the Kubernetes backend: SparkApplications created through the real
``kubernetes`` client against the fake API server, whose Spark Operator really runs each one with
local ``spark-submit``, and deferrable sensors waiting in the (in-process) triggerer."""

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
from testing.kubernetes_api import ExecutingSparkOperator, FakeKubernetesApi

pytestmark = pytest.mark.e2e
NAMESPACE = "ml-dev"


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)
    api = FakeKubernetesApi().start()
    operator = ExecutingSparkOperator(api, state_dir=tmp_path / "operator-runs").start()
    monkeypatch.setenv("SPARKAPP_BACKEND", "kubernetes")
    monkeypatch.setenv("SPARK_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": api.kube_config(NAMESPACE)}}))
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    # What deploy/'s flight-delays-settings gives the workers (the data volume at the data root;
    # the event logs, really written here by the local spark-submit)
    monkeypatch.setenv("SPARKAPP_DATA_CLAIM", "flight-delays-data")
    monkeypatch.setenv("SPARKAPP_DATA_MOUNT", str(tmp_path / "data"))
    monkeypatch.setenv("SPARKAPP_ENV_SECRETS", "flight-delays-mlflow")  # pragma: allowlist secret
    (tmp_path / "spark-events").mkdir()
    monkeypatch.setenv("SPARK_EVENT_LOG_DIR", (tmp_path / "spark-events").as_uri())
    yield api
    operator.stop()
    api.stop()


def test_dag_runs_on_the_kubernetes_backend(cluster):
    dag_run = run_dag(date(2013, 3, 15), {"window_days": 14, "history_days": 7})  # 8 training days
    assert dag_run.state == "success"

    apps = {name: app for (namespace, name), app in cluster.apps.items() if namespace == NAMESPACE}
    assert sorted(n.rsplit("-", 2)[0] for n in apps) == ["features", "train"]
    assert len(cluster.created) == 2  # one application per Spark stage, none created twice
    assert {states.application_state(a) for a in apps.values()} == {"COMPLETED"}
    features = next(a for n, a in apps.items() if n.startswith("features"))
    assert features["spec"]["arguments"][:4] == ["--data-root", str(DataLayout.from_env().root),
                                                 "--start-date", "2013-03-02"]

    for app in apps.values():  # the deployment's pod settings, rendered by the operator at run time
        spec = app["spec"]
        volume = {"name": "data", "persistentVolumeClaim": {"claimName": "flight-delays-data"}}
        assert spec["volumes"] == [volume]
        assert spec["driver"]["envFrom"] == spec["executor"]["envFrom"] == [
            {"secretRef": {"name": "flight-delays-mlflow"}}]
        assert spec["sparkConf"]["spark.eventLog.enabled"] == "true"
    event_logs = sorted(p.name for p in (DataLayout.from_env().root.parent / "spark-events").iterdir())
    # Spark 4 rolls its event logs by default: one directory per application, which the history
    # server reads
    assert len(event_logs) == 2, event_logs
    assert all(name.startswith("eventlog_v2_local-") for name in event_logs), event_logs

    report = json.loads(DataLayout.from_env().report(date(2013, 3, 15)).read_text())
    # the cost inputs of both stages, from the operator's status timings
    assert sorted(report["cost"]["stages"]) == ["features", "training"]
    assert {c["application"] for c in report["cost"]["stages"].values()} == set(apps)
    assert report["model"]["alias"] == "champion" and report["model"]["version"] == "1"
    assert 0.6 <= report["test_metrics"]["test_auc"] <= 0.95
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    run = client.get_run(report["model"]["run_id"])
    assert run.data.tags[APPLICATION_TAG] in apps
