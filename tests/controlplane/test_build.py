"""The control plane builds from the pinned Go modules, starts, answers the real client, and stops clean."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
import yaml

from testing.controlplane import harness

pytestmark = pytest.mark.controlplane

CRD = Path(__file__).resolve().parents[3] / "shared" / "crds" / "sparkoperator.k8s.io_sparkapplications.yaml"


@pytest.fixture(scope="module")
def binaries() -> dict[str, Path]:
    return harness.build()


def test_build_names_every_component_in_the_versioned_cache(binaries) -> None:
    assert set(binaries) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                             "spark-operator", "kwok"}
    for name, path in binaries.items():
        assert path.is_file() and path.stat().st_size > 1_000_000, name
        assert path.name == name and path.parent.name.startswith(f"{name}-v"), path
        assert harness.HERE not in path.parents, f"{path} is inside the checkout"


def test_a_second_build_reuses_the_cache(binaries) -> None:
    import subprocess

    # --list builds nothing: it fails when any component is missing from the cache.
    listed = subprocess.run(["bash", str(harness.BUILD_SCRIPT), "--list"], capture_output=True, text=True,
                            timeout=120, check=True)
    assert {n: Path(p) for n, _, p in (line.partition("=") for line in listed.stdout.split())} == binaries
    assert harness.build() == binaries
    assert sorted(line.split(":")[1].split()[0] for line in listed.stderr.splitlines()
                  if line.endswith(")") and ": cached (" in line) == sorted(binaries)


def test_start_create_namespace_apply_crd_stop(binaries) -> None:
    from kubernetes import client

    plane = harness.ControlPlane(binaries=binaries).start()
    pids = plane.pids()
    try:
        assert [p.name for p in plane.processes] == list(harness.CORE)
        api = plane.api_client()
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="flight-delays")))
        assert core.read_namespace("flight-delays").status.phase == "Active"

        ext = client.ApiextensionsV1Api(api)
        crd = yaml.safe_load(CRD.read_text())
        ext.create_custom_resource_definition(crd)
        deadline = time.monotonic() + 60
        while True:
            got = ext.read_custom_resource_definition(crd["metadata"]["name"])
            conditions = {c.type: c.status for c in (got.status.conditions or [])}
            if conditions.get("Established") == "True":
                break
            assert time.monotonic() < deadline, f"CRD not Established: {conditions}"
            time.sleep(0.2)
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "sparkoperator.k8s.io", "v1beta2", "flight-delays", "sparkapplications")
        assert listed["items"] == []
        # the controller manager works: the namespace gets its default service account
        deadline = time.monotonic() + 60
        while not core.list_namespaced_service_account("flight-delays").items:
            assert time.monotonic() < deadline, "no default service account"
            time.sleep(0.2)
        api.close()
    finally:
        workdir = plane.workdir
        plane.stop()
    assert not [pid for pid in pids if psutil.pid_exists(pid) and
                psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not plane.leftover()
    assert not workdir.exists()


def test_kwok_nodes_run_the_pods_the_scheduler_binds(binaries) -> None:
    from kubernetes import client

    with harness.ControlPlane(binaries=binaries, kwok=True) as plane:
        plane.add_node("kwok-node-0")
        with plane.api_client() as api:
            core = client.CoreV1Api(api)
            core.create_namespaced_pod("default", client.V1Pod(
                metadata=client.V1ObjectMeta(name="driver"),
                spec=client.V1PodSpec(containers=[client.V1Container(name="spark", image="spark:4")])))
            deadline = time.monotonic() + 60
            while (pod := core.read_namespaced_pod("driver", "default")).status.phase != "Running":
                assert time.monotonic() < deadline, pod.status
                time.sleep(0.2)
            assert pod.spec.node_name == "kwok-node-0"
            node = core.read_node("kwok-node-0")
            assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
        pids = plane.pids()
    assert [p.name for p in plane.processes] == []
    assert not [pid for pid in pids if psutil.pid_exists(pid) and
                psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
