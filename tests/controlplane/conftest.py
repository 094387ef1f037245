"""One control plane, set up as the platform team sets a cluster up (deploy/ applied, the Spark
Operator watching the test overlay's namespace), shared by the scenario modules: starting one costs
about 45 s here. Each module brings its own :class:`~testing.controlplane.pods.DriverExecutor`."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from testing.controlplane import harness
from testing.controlplane.history import History
from testing.controlplane.platform import Platform


@dataclass
class SharedCluster:
    plane: harness.ControlPlane
    platform: Platform
    history: History

    @property
    def namespace(self) -> str:
        return self.platform.namespace

    def worker_environment(self) -> dict[str, str]:
        """What a worker pod of deploy/ has: the settings, the Secrets' keys, the connection as the
        worker's service account, the Kubernetes backend."""
        return {**self.platform.worker_environment(), **self.platform.connection_env(),
                "SPARKAPP_BACKEND": "kubernetes"}

    def remove_applications(self, timeout: float = 120.0) -> None:
        """Delete every SparkApplication of the namespace and wait until they and their Spark pods
        are gone, so that the next module starts from an empty namespace."""
        from kubernetes import client
        with self.plane.api_client() as api:
            custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            custom.delete_collection_namespaced_custom_object(
                "sparkoperator.k8s.io", "v1beta2", self.namespace, "sparkapplications")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                apps = custom.list_namespaced_custom_object("sparkoperator.k8s.io", "v1beta2", self.namespace,
                                                            "sparkapplications")["items"]
                pods = core.list_namespaced_pod(self.namespace, label_selector="spark-role").items
                if not apps and not pods:
                    return
                time.sleep(0.5)
        raise AssertionError(f"applications or Spark pods left in {self.namespace} after {timeout:.0f} s")


@pytest.fixture(scope="package")  # stopped after the last test of tests/controlplane, not at the end
def shared_cluster():
    with harness.ControlPlane(kwok=True) as plane:
        plane.add_node("cpu-0", cpu="64", memory="256Gi")
        platform = Platform(plane).set_up()
        history = History(plane, platform.namespace).start()
        try:
            yield SharedCluster(plane, platform, history)
        finally:
            history.stop()
