"""What the sparkapp tests run against instead of a cluster and a task.

The fake Kubernetes API server with its simulated Spark Operator (the ``fake_k8s`` and ``controller``
fixtures, which the conftest files of the tests that need them import), a task instance that records
XCom pushes, and the submit operator and sensor driven against the fake server the way a DAG run
drives them. Shared by the unit tests under ``tests/plugins/sparkapp`` and ``tests/scenarios``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from sparkapp.application import PodResources, SparkJob
from sparkapp.operators.spark_application import SparkApplicationOperator
from sparkapp.sensors.spark_application import SparkApplicationSensor
from testing.kubernetes_api import FakeKubernetesApi, SimulatedSparkOperator

NAMESPACE = "ml-dev"
CONN_ID = "kubernetes_fake"


@pytest.fixture
def fake_k8s(monkeypatch):
    """A fake API server on 127.0.0.1 and the Airflow connection ``kubernetes_fake`` pointing at it."""
    api = FakeKubernetesApi().start()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({
        "conn_type": "kubernetes",
        "extra": {"kube_config": api.kube_config(NAMESPACE), "namespace": NAMESPACE},
    }))
    yield api
    api.stop()


@pytest.fixture
def controller(fake_k8s) -> SimulatedSparkOperator:
    return SimulatedSparkOperator(fake_k8s)


class RecordingTaskInstance:
    """The part of ``ti`` a sensor uses: XCom pushes, recorded."""

    def __init__(self) -> None:
        self.pushed: list[tuple[str, object]] = []

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed.append((key, value))


JOB = SparkJob(name="features", main_application_file="spark_jobs/features.py", image="spark-jobs:1",
               driver=PodResources(cores=1, memory="1g"), executor=PodResources(cores=1, memory="2g"))
START = datetime(2013, 6, 30, tzinfo=timezone.utc)


class TaskInstance:
    dag_id = "flight_delay_retraining"
    task_id = "submit_features"
    map_index = -1


def submit(run_id: str = "scheduled__2013-06-30T00:00:00+00:00") -> str:
    operator = SparkApplicationOperator(task_id="submit_features", job=JOB, backend="kubernetes",
                                        kubernetes_conn_id=CONN_ID, arguments=["--day", "2013-06-30"])
    return operator.execute({"ti": TaskInstance(), "data_interval_start": START, "run_id": run_id})


def sensor_for(name: str, **kwargs) -> SparkApplicationSensor:
    return SparkApplicationSensor(task_id="wait", application_name=name, backend="kubernetes",
                                  kubernetes_conn_id=CONN_ID, **kwargs)


def wait(sensor: SparkApplicationSensor, controller, steps: int = 10,
         ti: RecordingTaskInstance | None = None) -> bool:
    context = {"ti": ti or RecordingTaskInstance()}
    for _ in range(steps):
        controller.step()
        if sensor.poke(context):
            return True
    return False
