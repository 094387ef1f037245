"""The deployment's pod settings: read from the worker's environment, checked, and rendered into the
driver's and executors' volumes, envFrom and event log settings."""

from __future__ import annotations

import pytest

from sparkapp.application import PodEnvironment, SparkApplicationSpecError, render_manifest
from tests.plugins.sparkapp.application.examples import JOB


def test_pod_environment_from_the_workers_environment_reaches_driver_and_executors():
    environment = PodEnvironment.from_environ({
        "SPARKAPP_DATA_CLAIM": "flight-delays-data", "SPARKAPP_DATA_MOUNT": "/data",
        # pragma: allowlist nextline secret (names of Secrets)
        "SPARKAPP_ENV_SECRETS": "flight-delays-mlflow, flight-delays-object-storage",
        "SPARK_EVENT_LOG_DIR": "file:///data/spark-events",
    })
    spec = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev",
                           pod_environment=environment)["spec"]
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "flight-delays-data"}}]
    for role in ("driver", "executor"):
        assert spec[role]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
        assert spec[role]["envFrom"] == [{"secretRef": {"name": "flight-delays-mlflow"}},
                                         {"secretRef": {"name": "flight-delays-object-storage"}}]
    assert spec["sparkConf"] == {"spark.sql.shuffle.partitions": "8", "spark.eventLog.enabled": "true",
                                 "spark.eventLog.dir": "file:///data/spark-events"}



def test_an_unset_pod_environment_renders_nothing_of_it():
    plain = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev")
    assert render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev",
                           pod_environment=PodEnvironment.from_environ({})) == plain



@pytest.mark.parametrize(("environ", "message"), [
    ({"SPARKAPP_DATA_CLAIM": "flight-delays-data"},
     r"\$SPARKAPP_DATA_CLAIM and \$SPARKAPP_DATA_MOUNT go together .* "
     r"got claim 'flight-delays-data' and mount None"),
    ({"SPARKAPP_DATA_CLAIM": "Data_Volume", "SPARKAPP_DATA_MOUNT": "/data"},
     r"the data claim 'Data_Volume' must be a Kubernetes object name"),
    ({"SPARKAPP_DATA_CLAIM": "data", "SPARKAPP_DATA_MOUNT": "data"},
     r"\$SPARKAPP_DATA_MOUNT must be an absolute path, got 'data'"),
    ({"SPARKAPP_ENV_SECRETS": "flight-delays-mlflow,MLflow Secret"},  # pragma: allowlist secret
     r"the env Secret 'MLflow Secret' must be a Kubernetes object name"),
])
def test_a_bad_pod_environment_is_refused_naming_the_variable(environ, message):
    with pytest.raises(SparkApplicationSpecError, match=message):
        PodEnvironment.from_environ(environ)

