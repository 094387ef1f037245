"""Pods on KWOK nodes that behave as a kubelet's: GPUs, ending, logs, and Spark drivers that end.

One control plane for the module: a CPU node, a GPU node with one GPU, the Spark Operator, and the
cluster's PriorityClass for training (deploy/cluster), which the GPU profile's pods name.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path

import psutil
import pytest
import yaml

from testing.controlplane import harness
from testing.controlplane.pods import DriverExecutor, DriverOutcome, DriverRun

pytestmark = pytest.mark.controlplane

#: The cluster's PriorityClass of training pods, which the GPU profile's driver and executors name.
PRIORITY_CLASS = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "priorityclass.yaml"

NAMESPACE = "spark-test"
GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
TERMINAL = ("COMPLETED", "FAILED", "SUBMISSION_FAILED")
# the scheduler's own words when the one GPU is taken (and the CPU node lacks the GPU label)
NO_FREE_GPU = ("0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node "
               "affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims found for "
               "incoming pod, 1 Preemption is not helpful for scheduling.")
# ... and when the pod does not tolerate the GPU nodes' taint
UNTOLERATED = ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had "
               "untolerated taint(s). preemption: 0/2 nodes are available: 2 Preemption is not helpful for "
               "scheduling.")


@pytest.fixture(scope="module")
def plane():
    from kubernetes import client
    plane = harness.ControlPlane(kwok=True).start()
    try:
        plane.add_node("cpu-0")
        plane.add_node("gpu-0", gpus=1)
        plane.start_spark_operator(namespaces=[NAMESPACE])
        plane.create_spark_account(NAMESPACE)
        with plane.api_client() as api:
            client.SchedulingV1Api(api).create_priority_class(
                yaml.safe_load(PRIORITY_CLASS.read_text()))
        yield plane
    finally:
        pids = plane.pids()
        plane.stop()
    assert not [pid for pid in pids if psutil.pid_exists(pid) and
                psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


@pytest.fixture
def core(plane):
    from kubernetes import client
    with plane.api_client() as api:
        yield client.CoreV1Api(api)


def _pod(name: str, *containers: str, restart_policy: str = "Never", **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {
        "restartPolicy": restart_policy, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": c, "image": "busybox:1.37"} for c in containers or ("main",)], **spec}}


def _running(core, name: str, namespace: str = "default", timeout: float = 60):
    deadline = time.monotonic() + timeout
    while (pod := core.read_namespaced_pod(name, namespace)).status.phase != "Running":
        assert time.monotonic() < deadline, pod.status
        time.sleep(0.1)
    return pod


def _scheduling_failure(core, name: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(name, "default")
        scheduled = [c for c in pod.status.conditions or [] if c.type == "PodScheduled"]
        if scheduled and scheduled[0].status == "False":
            return pod, scheduled[0]
        assert time.monotonic() < deadline, pod.status
        time.sleep(0.1)


def _delete(core, *names: str, namespace: str = "default") -> None:
    for name in names:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


# ------------------------------------------------------------------------------------------------ GPUs


def test_a_gpu_node_has_the_gpu_operator_label_taint_and_resource(core) -> None:
    node = core.read_node("gpu-0")
    assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        ("nvidia.com/gpu", "present", "NoSchedule")]
    assert node.status.capacity["nvidia.com/gpu"] == "1"
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    cpu = core.read_node("cpu-0")
    assert "nvidia.com/gpu" not in cpu.status.capacity
    assert cpu.spec.taints is None
    assert "nvidia.com/gpu.present" not in cpu.metadata.labels


def test_an_executor_placed_as_the_gpu_profile_renders_runs_on_the_gpu_node_until_the_gpus_are_taken(
        core) -> None:
    from flight_delays.jobs import TRAIN_JOB
    from sparkapp.application.rendering import render_manifest

    executor = render_manifest(TRAIN_JOB.with_profile("gpu"), name="train-gpu",
                               namespace=NAMESPACE)["spec"]["executor"]
    gpu = {executor["gpu"]["name"]: str(executor["gpu"]["quantity"])}
    placed = {"nodeSelector": executor["nodeSelector"], "tolerations": executor["tolerations"]}
    core.create_namespaced_pod("default", _pod("gpu-exec-1", **placed))
    pods = ["gpu-exec-1"]
    try:
        # first without a GPU request: the profile's placement alone lands it on the GPU node
        assert _running(core, "gpu-exec-1").spec.node_name == "gpu-0"
        for name in ("gpu-exec-2", "gpu-exec-3"):
            body = _pod(name, **placed)
            body["spec"]["containers"][0]["resources"] = {"limits": gpu}
            core.create_namespaced_pod("default", body)
            pods.append(name)
        assert _running(core, "gpu-exec-2").spec.node_name == "gpu-0"
        pod, condition = _scheduling_failure(core, "gpu-exec-3")
        assert (pod.status.phase, condition.reason, condition.message) == (
            "Pending", "Unschedulable", NO_FREE_GPU)
        # without the toleration a GPU request fits nowhere: the taint keeps it off the GPU node
        body = _pod("no-toleration", nodeSelector=executor["nodeSelector"])
        body["spec"]["containers"][0]["resources"] = {"limits": gpu}
        core.create_namespaced_pod("default", body)
        pods.append("no-toleration")
        _, condition = _scheduling_failure(core, "no-toleration")
        assert condition.message == UNTOLERATED
        # the GPU is free again once its pod is gone: the waiting one gets it
        _delete(core, "gpu-exec-2")
        pods.remove("gpu-exec-2")
        assert _running(core, "gpu-exec-3").spec.node_name == "gpu-0"
    finally:
        _delete(core, *pods)


# ----------------------------------------------------------------------------------------- pods ending


def _statuses(pod) -> dict:
    return {c.name: c for c in pod.status.container_statuses}


@pytest.mark.parametrize(("exit_code", "message", "phase", "reason"), [
    (0, "", "Succeeded", "Completed"),
    (2, "wrote /dev/termination-log", "Failed", "Error"),
])
def test_finish_pod_ends_a_running_pod_as_its_kubelet_reports_it(plane, core, exit_code, message, phase,
                                                                 reason) -> None:
    name = f"ends-{exit_code}"
    core.create_namespaced_pod("default", _pod(name, "main", "sidecar"))
    try:
        running = _running(core, name)
        started = {n: c.state.running.started_at for n, c in _statuses(running).items()}
        assert all(started.values())

        pod = plane.finish_pod("default", name, exit_code=exit_code, message=message)

        assert pod.status.phase == phase
        for container, status in _statuses(pod).items():
            terminated = status.state.terminated
            assert (status.state.running, status.state.waiting, status.ready, status.started) == (
                None, None, False, False)
            assert (terminated.exit_code, terminated.reason, terminated.message) == (
                exit_code, reason, message or None)
            assert terminated.started_at == started[container]
            assert terminated.finished_at >= terminated.started_at
        conditions = {c.type: (c.status, c.reason) for c in pod.status.conditions}
        assert conditions == {"Initialized": ("True", None), "PodScheduled": ("True", None),
                              "Ready": ("False", "PodCompleted"),
                              "ContainersReady": ("False", "PodCompleted")}
        # and it stays ended: KWOK's stages do not bring it back
        time.sleep(3)
        again = core.read_namespaced_pod(name, "default")
        assert again.metadata.resource_version == pod.metadata.resource_version
        assert again.status == pod.status
    finally:
        _delete(core, name)


def test_finish_pod_after_a_delay_and_with_a_reason_of_its_own(plane, core) -> None:
    core.create_namespaced_pod("default", _pod("oom", "main"))
    try:
        _running(core, "oom")
        asked = datetime.datetime.now(datetime.timezone.utc)
        pod = plane.finish_pod("default", "oom", exit_code=137, reason="OOMKilled", after=2, wait=False)
        assert pod.status.phase == "Running"
        pod = plane.finish_pod("default", "oom", exit_code=137, reason="OOMKilled", after=2)
        terminated = pod.status.container_statuses[0].state.terminated
        assert (pod.status.phase, terminated.exit_code, terminated.reason) == ("Failed", 137, "OOMKilled")
        # the API keeps whole seconds: the end is at least 2 s after the first ask
        assert terminated.finished_at >= asked.replace(microsecond=0) + datetime.timedelta(seconds=2)
    finally:
        _delete(core, "oom")


def test_finish_pod_refuses_a_pod_a_kubelet_would_restart(plane, core) -> None:
    core.create_namespaced_pod("default", _pod("restarts", restart_policy="Always"))
    try:
        with pytest.raises(harness.ControlPlaneError) as raised:
            plane.finish_pod("default", "restarts", exit_code=1)
        assert str(raised.value) == (
            "pod default/restarts has restartPolicy Always: a kubelet would restart its containers after "
            "exit code 1, not end the pod; give it restartPolicy Never")
    finally:
        _delete(core, "restarts")


# ------------------------------------------------------------------------------------------------ logs


def test_container_logs_come_through_the_api_server_from_kwok(plane, core) -> None:
    from kubernetes.client.exceptions import ApiException

    core.create_namespaced_pod("default", _pod("logs", "main", "sidecar"))
    core.create_namespaced_pod("default", _pod("silent", "main"))
    try:
        _running(core, "logs")
        _running(core, "silent")
        lines = ["starting", "  indented, with spaces  ", "", "done: 3 rows"]
        path = plane.set_pod_log("default", "logs", "main", lines)
        assert path.read_text().splitlines()[0].endswith(" stdout F starting")  # the CRI log format

        assert plane.read_pod_log("default", "logs", "main") == (
            "starting\n  indented, with spaces  \n\ndone: 3 rows\n")
        assert plane.read_pod_log("default", "logs", "main", tail_lines=2) == "\ndone: 3 rows\n"
        assert plane.read_pod_log("default", "logs", "main", limit_bytes=5) == "start"
        # what a kubelet answers for a container that wrote nothing: an empty log
        assert plane.read_pod_log("default", "logs", "sidecar") == ""
        assert plane.read_pod_log("default", "silent", "main") == ""
        # the API server itself refuses a container the pod does not have
        with pytest.raises(ApiException) as raised:
            plane.read_pod_log("default", "logs", "nope")
        assert (raised.value.status, json.loads(raised.value.body)["message"]) == (
            400, "container nope is not valid for pod logs")

        plane.set_pod_log("default", "logs", "main", ["replaced"])
        assert plane.read_pod_log("default", "logs", "main") == "replaced\n"
        # an ended container's log is still there, as on a node
        plane.finish_pod("default", "logs", exit_code=1)
        assert plane.read_pod_log("default", "logs", "main") == "replaced\n"
    finally:
        _delete(core, "logs", "silent")


# ------------------------------------------------------------------------------------ Spark drivers


def _app(name: str, *arguments: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "Python", "mode": "cluster", "image": "spark:4.0.0", "sparkVersion": "4.0.0",
            "mainApplicationFile": "local:///opt/spark/work-dir/tests/controlplane/tiny_spark_job.py",
            "arguments": list(arguments),
            # a few seconds less of the local run: no web UI, one shuffle partition for one sum
            "sparkConf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1"},
            "restartPolicy": {"type": "Never"},
            "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark"},
            "executor": {"instances": 1, "cores": 1, "memory": "512m"},
        },
    }


def _final(custom, names: list[str], timeout: float = 180) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        apps = {n: custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, n) for n in names}
        states = {n: a.get("status", {}).get("applicationState", {}).get("state") for n, a in apps.items()}
        if all(s in TERMINAL for s in states.values()):
            return {n: a["status"] for n, a in apps.items()}
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


def test_scripted_drivers_end_and_the_spark_operator_records_completed_and_failed(plane, core) -> None:
    from kubernetes import client

    script = {"ok-": DriverOutcome(exit_code=0, log=("all done",)),
              "bad-": DriverOutcome(exit_code=1, after=1.0, log=("Traceback (most recent call last):",
                                                                  "ValueError: no rows for 2013-01-15"))}
    with plane.api_client() as api, DriverExecutor(plane, [NAMESPACE], script=script,
                                                   run_locally=False) as executor:
        custom = client.CustomObjectsApi(api)
        for name in ("ok-1", "bad-1"):
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, _app(name, "10"))
        final = _final(custom, ["ok-1", "bad-1"])
        runs = sorted((r.application, r.pod, r.exit_code, r.outcome) for r in executor.runs)

    assert runs == [("bad-1", "bad-1-driver", 1, "scripted"), ("ok-1", "ok-1-driver", 0, "scripted")]
    assert final["ok-1"]["applicationState"] == {"state": "COMPLETED"}
    assert final["bad-1"]["applicationState"] == {
        "state": "FAILED", "errorMessage": "driver container failed with ExitCode: 1, Reason: Error"}
    assert final["bad-1"]["driverInfo"]["podName"] == "bad-1-driver"
    assert core.read_namespaced_pod("bad-1-driver", NAMESPACE).status.phase == "Failed"
    assert plane.read_pod_log(NAMESPACE, "bad-1-driver", "spark-kubernetes-driver") == (
        "Traceback (most recent call last):\nValueError: no rows for 2013-01-15\n")
    assert plane.read_pod_log(NAMESPACE, "ok-1-driver", "spark-kubernetes-driver") == "all done\n"


def test_local_runs_do_the_real_computation_and_the_spark_operator_records_how_they_ended(
        plane, core, tmp_path) -> None:
    from kubernetes import client

    from sparkapp.hooks.local import LocalSparkApplicationClient

    with plane.api_client() as api, DriverExecutor(plane, [NAMESPACE], state_dir=tmp_path) as executor:
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, _app("local-sum", "100"))
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL,
                                               _app("local-refuses", "100", "--fail"))
        final = _final(custom, ["local-sum", "local-refuses"], timeout=300)
        runs = {r.application: (r.exit_code, r.outcome) for r in executor.runs}

    assert runs == {"local-sum": (0, "COMPLETED"), "local-refuses": (1, "FAILED")}
    assert final["local-sum"]["applicationState"] == {"state": "COMPLETED"}
    assert final["local-refuses"]["applicationState"] == {
        "state": "FAILED", "errorMessage": "driver container failed with ExitCode: 1, Reason: Error"}
    # the driver's log is what the local spark-submit printed: the job's own line among Spark's
    log = plane.read_pod_log(NAMESPACE, "local-sum-driver", "spark-kubernetes-driver").splitlines()
    assert "sum of 1..100 = 5050" in log
    refused = plane.read_pod_log(NAMESPACE, "local-refuses-driver", "spark-kubernetes-driver").splitlines()
    assert "refusing to sum 1..100: asked to fail" in refused
    assert "sum of 1..100 = 5050" not in refused
    # and the local backend recorded the same two ends
    local = LocalSparkApplicationClient(state_dir=tmp_path)
    recorded = {name: local.get_application(name, NAMESPACE)["status"]["applicationState"]["state"]
                for name in ("local-sum", "local-refuses")}
    assert recorded == {"local-sum": "COMPLETED", "local-refuses": "FAILED"}


# ------------------------------------------------------------------------------ Spark executors


def _gpu_app(name: str, **spark_conf: str) -> dict:
    """The training job's SparkApplication as the project renders it with its GPU profile."""
    from flight_delays.jobs import TRAIN_JOB
    from sparkapp.application.rendering import render_manifest
    manifest = render_manifest(TRAIN_JOB.with_profile("gpu"), name=name, namespace=NAMESPACE)
    manifest["spec"]["sparkConf"].update(spark_conf)
    return manifest


def _until(what: str, check, timeout: float = 120):
    """``check()``'s first truthy answer, polled."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        assert time.monotonic() < deadline, f"not {what} after {timeout:.0f}s"
        time.sleep(0.2)
    return answer


def _as_dict(obj) -> dict:
    from kubernetes import client
    return client.ApiClient().sanitize_for_serialization(obj)


def _executor_pods(core, application: str) -> dict[str, dict]:
    pods = core.list_namespaced_pod(
        NAMESPACE, label_selector=f"spark-role=executor,sparkoperator.k8s.io/app-name={application}").items
    return {p.metadata.name: _as_dict(p) for p in pods}


def _status(custom, name: str) -> dict:
    return custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name).get("status", {})


def _delete_app(custom, core, name: str) -> None:
    from kubernetes.client.exceptions import ApiException
    try:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    except ApiException as e:
        if e.status != 404:
            raise
    # the garbage collector removes the executors with their driver pod (their controller owner)
    _until(f"{name}'s pods gone", lambda: not core.list_namespaced_pod(
        NAMESPACE, label_selector=f"sparkoperator.k8s.io/app-name={name}").items)


def test_a_scripted_driver_creates_its_executors_as_spark_does_and_they_wait_for_a_free_gpu(
        plane, core) -> None:
    from kubernetes import client

    # the one GPU is taken by a pod of the same priority, so that the executors cannot preempt it
    holder = _pod("gpu-holder", priorityClassName="ml-training",
                  nodeSelector={"nvidia.com/gpu.present": "true"},
                  tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    holder["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    core.create_namespaced_pod("default", holder)
    held = True
    # a fixed executor name prefix; and Spark's scheduler waits only 1s for its executors to register
    app = _gpu_app("gpu-waits", **{"spark.kubernetes.executor.podNamePrefix": "gpu-waits",
                                   "spark.scheduler.maxRegisteredResourcesWaitingTime": "1s"})
    names = ["gpu-waits-exec-1", "gpu-waits-exec-2"]
    script = {"gpu-waits": DriverOutcome(executors=True, after=3600)}
    with plane.api_client() as api, DriverExecutor(plane, [NAMESPACE], script=script,
                                                   run_locally=False) as executor:
        custom = client.CustomObjectsApi(api)
        try:
            assert _running(core, "gpu-holder").spec.node_name == "gpu-0"
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, app)
            # no GPU is free: the operator records both executors PENDING, the scheduler says why
            _until("both executors PENDING", lambda: _status(custom, "gpu-waits").get("executorState") == {
                "gpu-waits-exec-1": "PENDING", "gpu-waits-exec-2": "PENDING"})
            for name in names:
                pod = core.read_namespaced_pod(name, NAMESPACE)
                scheduled = [c for c in pod.status.conditions or [] if c.type == "PodScheduled"]
                assert (pod.status.phase, scheduled[0].reason, scheduled[0].message) == (
                    "Pending", "Unschedulable", NO_FREE_GPU)
            # well past the registration wait, a driver with no executor running is still running
            time.sleep(3)
            status = _status(custom, "gpu-waits")
            assert status["applicationState"] == {"state": "RUNNING"}
            assert status["executorState"] == {"gpu-waits-exec-1": "PENDING", "gpu-waits-exec-2": "PENDING"}
            assert core.read_namespaced_pod("gpu-waits-driver", NAMESPACE).status.phase == "Running"
            assert executor.runs == []

            # the GPU is free again: one executor gets it and runs, the other still waits
            _delete(core, "gpu-holder")
            held = False
            states = _until("one executor RUNNING", lambda: (
                s := _status(custom, "gpu-waits").get("executorState", {})) and "RUNNING" in s.values() and s)
            assert sorted(states.values()) == ["PENDING", "RUNNING"]
            pods = _executor_pods(core, "gpu-waits")
            assert sorted(pods) == names
            running = next(n for n, s in states.items() if s == "RUNNING")
            assert {n: (p["status"]["phase"], p["spec"].get("nodeName")) for n, p in pods.items()} == {
                n: ("Running", "gpu-0") if n == running else ("Pending", None) for n in names}

            status = _status(custom, "gpu-waits")
            driver = _as_dict(core.read_namespaced_pod("gpu-waits-driver", NAMESPACE))
            application = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "gpu-waits")
            for name, pod in pods.items():
                meta, spec = pod["metadata"], pod["spec"]
                (container,) = spec["containers"]
                env = {e["name"]: e.get("value") for e in container["env"]}
                # what Spark's driver sets: names, labels (its own and the operator's executor labels)...
                assert meta["labels"] == {
                    "spark-app-name": "gpu-waits", "spark-app-selector": status["sparkApplicationId"],
                    "spark-exec-id": name[-1], "spark-exec-resourceprofile-id": "0", "spark-role": "executor",
                    "spark-version": "4.3.0", "sparkoperator.k8s.io/app-name": "gpu-waits",
                    "sparkoperator.k8s.io/launched-by-spark-operator": "true",
                    "sparkoperator.k8s.io/mutated-by-spark-operator": "true",
                    "sparkoperator.k8s.io/submission-id": status["submissionID"]}
                assert meta["annotations"] == {"prometheus.io/path": "/metrics", "prometheus.io/port": "8090",
                                               "prometheus.io/scrape": "true"}
                # ...owners: the application (the operator's executor template) and, controlling, the driver
                assert meta["ownerReferences"] == [
                    {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
                     "name": "gpu-waits", "uid": application["metadata"]["uid"]},
                    {"apiVersion": "v1", "kind": "Pod", "name": "gpu-waits-driver",
                     "uid": driver["metadata"]["uid"], "controller": True}]
                assert (spec["hostname"], spec["restartPolicy"], spec["serviceAccountName"]) == (
                    name, "Never", "spark")
                assert (container["name"], container["image"], container["args"]) == (
                    "spark-kubernetes-executor", "ghcr.io/flight-delays/spark-jobs-gpu:0.1.0", ["executor"])
                # 4 cores; 8g + 6g overhead; the GPU of spec.executor.gpu (Spark asks for the same from
                # spark.executor.resource.gpu.*), requested as limited
                assert container["resources"] == {
                    "limits": {"cpu": "4", "memory": "14Gi", "nvidia.com/gpu": "1"},
                    "requests": {"cpu": "4", "memory": "14Gi", "nvidia.com/gpu": "1"}}
                assert (env["SPARK_DRIVER_URL"], env["SPARK_EXECUTOR_ID"], env["SPARK_EXECUTOR_CORES"],
                        env["SPARK_EXECUTOR_MEMORY"], env["SPARK_APPLICATION_ID"]) == (
                    f"spark://CoarseGrainedScheduler@{driver['status']['podIP']}:7078", name[-1], "4",
                    "8192m", status["sparkApplicationId"])
                # what the operator's webhook adds from spec.executor: placement, priority, security
                # contexts, the metrics port and configuration (admission adds the default tolerations)
                assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
                assert spec["tolerations"] == [
                    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
                     "tolerationSeconds": 300},
                    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
                     "tolerationSeconds": 300},
                    {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
                assert (spec["priorityClassName"], spec["priority"]) == ("ml-training", 100000)
                assert spec["securityContext"] == {
                    "fsGroup": 185, "runAsGroup": 185, "runAsNonRoot": True, "runAsUser": 185,
                    "seccompProfile": {"type": "RuntimeDefault"}}
                assert container["securityContext"] == {
                    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": True, "runAsUser": 185, "seccompProfile": {"type": "RuntimeDefault"}}
                assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [
                    ("blockmanager", 7079), ("jmx-exporter", 8090)]
                volumes = [v["name"] for v in spec["volumes"]]
                assert (volumes[:2], volumes[3:]) == (["spark-conf-volume-exec", "spark-local-dir-1"],
                                                      ["gpu-waits-prom-conf-vol"])
            # the executors' ConfigMap, the driver's
            (config_map,) = core.list_namespaced_config_map(
                NAMESPACE, label_selector=f"spark-app-selector={status['sparkApplicationId']}").items
            assert config_map.metadata.name == pods[names[0]]["spec"]["volumes"][0]["configMap"]["name"]
            assert [(o.kind, o.name) for o in config_map.metadata.owner_references] == [
                ("Pod", "gpu-waits-driver")]
            assert executor.runs == []
        finally:
            if held:
                _delete(core, "gpu-holder")
            # the application goes, its driver pod with it and the executors with the driver
            _delete_app(custom, core, "gpu-waits")
        _until("the driver seen gone", lambda: executor.runs)
    assert executor.runs == [DriverRun(NAMESPACE, "gpu-waits", "gpu-waits-driver", None, "deleted",
                                       executors=dict.fromkeys(names))]


@pytest.mark.parametrize("delete_on_termination", [None, False])
def test_with_free_gpus_the_executors_run_and_end_before_their_driver_and_the_app_completes(
        plane, core, delete_on_termination) -> None:
    from kubernetes import client

    name = "gpu-runs" if delete_on_termination is None else "gpu-keeps"
    app = _gpu_app(name)
    if delete_on_termination is not None:
        app["spec"]["executor"]["deleteOnTermination"] = delete_on_termination
    script = {name: DriverOutcome(executors=True, after=2.0, log=("model trained",))}
    plane.add_node("gpu-1", gpus=1)  # two GPUs, one for each executor
    try:
        with plane.api_client() as api, DriverExecutor(plane, [NAMESPACE], script=script,
                                                       run_locally=False) as executor:
            custom = client.CustomObjectsApi(api)
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, app)
            final = _final(custom, [name])[name]
            (run,) = _until("the driver's end recorded", lambda: executor.runs)
            executors = sorted(run.executors)
            # the operator counts every executor completed in the end
            completed = dict.fromkeys(executors, "COMPLETED")
            _until("the executors COMPLETED", lambda: _status(custom, name).get("executorState") == completed)
            events = core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}").items
            pods = {p.metadata.name: p for p in core.list_namespaced_pod(
                NAMESPACE, label_selector=f"spark-role=executor,sparkoperator.k8s.io/app-name={name}").items}
            config_maps = core.list_namespaced_config_map(
                NAMESPACE, label_selector=f"spark-app-selector={final['sparkApplicationId']}").items
            driver = core.read_namespaced_pod(f"{name}-driver", NAMESPACE)

        # Spark's own executor name prefix: the application's name and a unique id
        prefix = executors[0].removesuffix("-exec-1")
        assert re.fullmatch(rf"{name}-[0-9a-f]{{16}}", prefix)
        assert executors == [f"{prefix}-exec-1", f"{prefix}-exec-2"]
        assert (run.exit_code, run.outcome, run.log, run.executors) == (
            0, "scripted", ["model trained"], dict.fromkeys(executors, 0))
        assert final["applicationState"] == {"state": "COMPLETED"}
        # both ran, as the operator saw
        assert sorted(e.message for e in events if e.reason == "SparkExecutorRunning") == [
            f"Executor {e} is running" for e in executors]
        assert plane.read_pod_log(NAMESPACE, f"{name}-driver", "spark-kubernetes-driver") == "model trained\n"
        driver_end = driver.status.container_statuses[0].state.terminated
        assert (driver.status.phase, driver_end.exit_code) == ("Succeeded", 0)
        if delete_on_termination is None:
            # the driver deleted its executors and their ConfigMap
            assert (pods, config_maps) == ({}, [])
        else:
            # kept: each ran on its own GPU node and ended with exit code 0 before the driver ended
            assert sorted(pods) == executors
            assert sorted(p.spec.node_name for p in pods.values()) == ["gpu-0", "gpu-1"]
            for pod in pods.values():
                terminated = pod.status.container_statuses[0].state.terminated
                assert (pod.status.phase, terminated.exit_code, terminated.reason) == (
                    "Succeeded", 0, "Completed")
                assert terminated.finished_at <= driver_end.finished_at
            assert len(config_maps) == 1
    finally:
        with plane.api_client() as api:
            _delete_app(client.CustomObjectsApi(api), core, name)
        core.delete_node("gpu-1")
        _until("gpu-1 gone", lambda: "gpu-1" not in [n.metadata.name for n in core.list_node().items])
