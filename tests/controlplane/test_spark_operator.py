"""The Spark Operator v2.5.2 (webhook and controller) on the control plane runs a SparkApplication."""

from __future__ import annotations

import time

import psutil
import pytest

from testing.controlplane import harness

pytestmark = pytest.mark.controlplane

NAMESPACE = "spark-test"
GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"


def _app(name: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "Python", "mode": "cluster", "image": "spark:4.0.0", "sparkVersion": "4.0.0",
            "mainApplicationFile": "local:///x.py",
            "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark"},
            "executor": {"instances": 1, "cores": 1, "memory": "512m"},
        },
    }


def test_operator_submits_a_spark_application_and_its_driver_pod_runs_on_kwok() -> None:
    from kubernetes import client, watch

    with harness.ControlPlane(kwok=True) as plane:
        plane.add_node("kwok-node-0")
        plane.start_spark_operator(namespaces=[NAMESPACE])
        names = [p.name for p in plane.processes]
        assert names[-2:] == ["spark-operator-webhook", "spark-operator-controller"]
        plane.create_spark_account(NAMESPACE)
        with plane.api_client() as api:
            custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            created = custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, _app("pi"))
            # every version of the object, from a watch (a poll can miss SUBMITTED: RUNNING follows in ms)
            app = created
            states = [app.get("status", {}).get("applicationState", {}).get("state", "")]
            deadline = time.monotonic() + 120
            stream = watch.Watch()
            while "RUNNING" not in states and time.monotonic() < deadline:
                for event in stream.stream(custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE,
                                           PLURAL, field_selector="metadata.name=pi",
                                           resource_version=app["metadata"]["resourceVersion"],
                                           timeout_seconds=10):
                    app = event["object"]
                    state = app.get("status", {}).get("applicationState", {}).get("state", "")
                    if not states or states[-1] != state:
                        states.append(state)
                    if state in ("RUNNING", "SUBMISSION_FAILED", "FAILED") or time.monotonic() > deadline:
                        stream.stop()
                if states[-1] in ("SUBMISSION_FAILED", "FAILED"):
                    break
            assert states == ["", "SUBMITTED", "RUNNING"], (states, app.get("status"),
                                                              plane.processes[-1].tail())
            assert app["status"]["submissionAttempts"] == 1
            assert app["status"]["driverInfo"]["podName"] == "pi-driver"
            pod = core.read_namespaced_pod("pi-driver", NAMESPACE)
            assert pod.status.phase == "Running"
            assert pod.spec.node_name == "kwok-node-0"
            assert pod.spec.service_account_name == "spark"
            assert pod.metadata.labels["sparkoperator.k8s.io/launched-by-spark-operator"] == "true"
            assert pod.metadata.labels["spark-role"] == "driver"
        pids = plane.pids()
    assert plane.processes == []
    assert not [pid for pid in pids if psutil.pid_exists(pid) and
                psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
