from __future__ import annotations

import json

import pytest

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
