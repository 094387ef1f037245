"""The Kubernetes backend's scenario matrix on the real control plane: the project's operator, sensor
and trigger, acting with the worker's service-account token under deploy/'s RBAC, against the real
kube-apiserver, garbage collector, quotas and the real Spark Operator v2.5.2 (controller and
webhook); driver pods on KWOK nodes end as each scenario's script says (``DriverExecutor``).

=============================================  ==========================================================
scenario                                       exact outcome
=============================================  ==========================================================
success                                        COMPLETED; the driver's log in the task log; 1 app and
                                               1 driver pod created
driver fails after longer than startup_timeout the rerun is waited for, not killed as "did not start";
(OnFailure, one retry)                         FAILED with the operator's errorMessage; 2 driver pods
submission failure (missing service account)   SUBMISSION_FAILED, retried, then FAILED naming the
                                               account; no driver pod
a quota that refuses the driver pod            FAILED with the quota's own message; no driver pod
no GPU node for the GPU profile's executors    the driver runs, its executors pend: the start-up
                                               deadline fails it with the scheduler's own message;
                                               the app, driver and executors deleted
the webhook not answering                      real 500s from the API server, backed off; created once
                                               it answers again; the error names the webhook if never
a finished leftover replaced 20 times          foreground deletion: never SUBMISSION_FAILED, never a
                                               stall; 20 apps, 20 driver pods, each COMPLETED
a retry while the app is being deleted         not adopted: waits until it is gone, creates a new one
the user kills the deferred task               the trigger's on_kill deletes the app and its pods
TTL removes the app after COMPLETED            the sensor acts on what the trigger read: success
triggerer restarted mid-wait                   the rebuilt trigger fires on COMPLETED
=============================================  ==========================================================

The manifests ``make manifests`` writes, Pod Security "restricted" and deploy/'s RBAC are proven in
``test_platform.py``; the webhook's mutation of driver and executor pods in ``test_platform.py`` and
``test_kwok_pods.py``. What only fault injection shows (5xx and resets on reads, latency) is in
``tests/scenarios/test_kubernetes_backend.py`` against the fake API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import TaskDeferred

from flight_delays.jobs import FEATURES_JOB, TRAIN_JOB
from sparkapp import states
from sparkapp.application import RestartPolicy
from sparkapp.client import SparkApplicationApiError
from sparkapp.hooks import kubernetes as kubernetes_hook
from sparkapp.operators.spark_application import SparkApplicationOperator
from sparkapp.sensors.spark_application import SparkApplicationFailed, SparkApplicationSensor
from testing.controlplane import harness
from testing.controlplane.pods import DriverExecutor, DriverOutcome

if TYPE_CHECKING:
    from testing.controlplane.history import History
    from testing.controlplane.platform import Platform

pytestmark = pytest.mark.controlplane

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
DAG_ID = "scenarios"
START = datetime(2013, 6, 30, tzinfo=timezone.utc)
#: Resubmit at once, once: the scenarios' reruns take seconds, not the project's 30 and 60 s.
QUICK_RESTARTS = RestartPolicy(on_failure_retries=1, on_failure_retry_interval=1,
                               on_submission_failure_retries=1, on_submission_failure_retry_interval=1)
#: How each scenario's driver ends, by job (application name prefix).
SCRIPT = {
    "ok": DriverOutcome(exit_code=0, after=1, log=("read 827 rows", "wrote 827 rows")),
    "flaky": DriverOutcome(exit_code=1, after=25, log=("ValueError: bad row",)),
    "again": DriverOutcome(exit_code=0),
    "ttl": DriverOutcome(exit_code=0),
    "restart": DriverOutcome(exit_code=0, after=4),
    "killed": DriverOutcome(exit_code=0, after=3600),
    "hook": DriverOutcome(exit_code=0),
    "gpu": DriverOutcome(exit_code=0, after=1, executors=True),
    "deleting": DriverOutcome(exit_code=0, after=3600),
}


def scenario_job(name: str, **changes):
    """The project's feature job (its image, resources, security contexts, volumes) renamed."""
    return replace(FEATURES_JOB, name=name, restart_policy=QUICK_RESTARTS, **changes)


class TaskInstance:
    def __init__(self, task_id: str) -> None:
        self.dag_id, self.task_id, self.map_index = DAG_ID, task_id, -1
        self.pushed: list[tuple[str, object]] = []

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed.append((key, value))


@dataclass
class Cluster:
    plane: harness.ControlPlane
    platform: Platform
    executor: DriverExecutor
    history: History

    @property
    def namespace(self) -> str:
        return self.platform.namespace

    def application(self, name: str) -> dict | None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        with self.plane.api_client() as api:
            try:
                return client.CustomObjectsApi(api).get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def pods(self, prefix: str) -> list[str]:
        from kubernetes import client
        with self.plane.api_client() as api:
            pods = client.CoreV1Api(api).list_namespaced_pod(self.namespace).items
        return sorted(p.metadata.name for p in pods if p.metadata.name.startswith(prefix))

    def wait_until(self, what: str, check, timeout: float = 120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    with pytest.MonkeyPatch.context() as patch:
        for key, value in shared_cluster.worker_environment().items():
            patch.setenv(key, value)
        with DriverExecutor(shared_cluster.plane, [shared_cluster.namespace], script=SCRIPT,
                            run_locally=False) as executor:
            yield Cluster(shared_cluster.plane, shared_cluster.platform, executor, shared_cluster.history)
            shared_cluster.remove_applications()


def submit(job, *, run_id: str = "manual__2013-06-30T00:00:00+00:00") -> tuple[str, TaskInstance]:
    ti = TaskInstance(f"submit_{job.name}")
    operator = SparkApplicationOperator(task_id=ti.task_id, job=job, backend="kubernetes",
                                        arguments=["--day", "2013-06-30"])
    return operator.execute({"ti": ti, "data_interval_start": START, "run_id": run_id}), ti


def defer(name: str, **kwargs) -> tuple[SparkApplicationSensor, object, TaskInstance]:
    """The sensor as Airflow runs it on Kubernetes: it defers; answer it, its trigger and its ti."""
    ti = TaskInstance(f"wait_{name}")
    sensor = SparkApplicationSensor(task_id=ti.task_id, application_name=name, backend="kubernetes",
                                    **{"poke_interval": 0.5, **kwargs})
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": ti})
    return sensor, deferred.value.trigger, ti


async def first_event(trigger, timeout: float = 180.0) -> dict:
    """Run ``trigger`` to its first event, as the triggerer does, and close it."""
    events = trigger.run()
    try:
        return (await asyncio.wait_for(events.__anext__(), timeout)).payload
    finally:
        await events.aclose()


def fire(trigger, timeout: float = 180.0) -> dict:
    return asyncio.run(first_event(trigger, timeout))


def wait(name: str, **kwargs) -> TaskInstance:
    """Defer, run the trigger to its event, resume: the whole deferred wait of one task."""
    sensor, trigger, ti = defer(name, **kwargs)
    sensor.execute_complete({"ti": ti}, fire(trigger))
    return ti


def test_success(cluster, capsys):
    name, _ = submit(scenario_job("ok"))
    ti = wait(name)
    assert [key for key, _ in ti.pushed] == ["_link_SparkUiLink", "cost", "_link_SparkHistoryLink"]
    out = capsys.readouterr().out
    assert "Last 2 line(s) of the driver log" in out and "wrote 827 rows" in out
    seen = cluster.history.states("ok-")
    assert seen[0] == "" and seen[-1] == "COMPLETED" and "RUNNING" in seen
    assert not {"SUBMISSION_FAILED", "FAILED", "FAILING"} & set(seen)
    history = cluster.history
    assert (history.created("SparkApplication", "ok-"), history.created("Pod", "ok-")) == (1, 1)


def test_a_rerun_after_a_late_driver_failure_is_waited_for_then_fails_with_the_operators_message(cluster):
    name, _ = submit(scenario_job("flaky"))
    with pytest.raises(SparkApplicationFailed) as raised:
        # each attempt runs 25 s, longer than startup_timeout (more than its spark-submit takes), then fails
        wait(name, startup_timeout=15)
    assert str(raised.value) == (f"SparkApplication {name} in namespace {cluster.namespace} FAILED: driver "
                                 "container failed with ExitCode: 1, Reason: Error")
    seen = cluster.history.states("flaky-")
    assert seen[-1] == "FAILED" and "PENDING_RERUN" in seen
    assert seen.count("RUNNING") == 2  # the first attempt and its rerun, both ran to their end
    assert cluster.history.created("Pod", "flaky-") == 2
    assert cluster.history.created("SparkApplication", "flaky-") == 1
    assert cluster.application(name) is not None  # failed, not deleted as "did not start"


def test_a_submission_failure_is_retried_then_fails_naming_the_cause(cluster):
    name, _ = submit(scenario_job("nosa", service_account="no-such-account"))
    with pytest.raises(SparkApplicationFailed) as raised:
        wait(name)
    message = str(raised.value)
    assert message.startswith(f"SparkApplication {name} in namespace {cluster.namespace} FAILED: ")
    assert 'serviceaccount "no-such-account" not found' in message
    assert cluster.history.states("nosa-") == ["", "SUBMISSION_FAILED", "FAILED"]
    assert cluster.application(name)["status"]["submissionAttempts"] == 2  # the first try and its retry
    assert cluster.history.created("Pod", "nosa-") == 0


def test_a_quota_that_refuses_the_driver_fails_with_the_quotas_message(cluster):
    from kubernetes import client
    quota = client.V1ResourceQuota(metadata=client.V1ObjectMeta(name="scenario-no-pods"),
                                   spec=client.V1ResourceQuotaSpec(hard={"pods": "0"}))
    with cluster.plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_resource_quota(cluster.namespace, quota)
        try:
            cluster.wait_until("the quota counts pods", lambda: (core.read_namespaced_resource_quota(
                "scenario-no-pods", cluster.namespace).status.used or {}).get("pods") is not None)
            name, _ = submit(scenario_job("quota"))
            with pytest.raises(SparkApplicationFailed) as raised:
                wait(name)
        finally:
            core.delete_namespaced_resource_quota("scenario-no-pods", cluster.namespace)
    assert "exceeded quota: scenario-no-pods, requested: pods=1, used: pods=" in str(raised.value)
    assert cluster.history.created("Pod", "quota-") == 0


def test_no_free_gpu_for_the_executors_fails_at_the_startup_deadline_with_the_schedulers_message(cluster):
    job = replace(TRAIN_JOB.with_profile("gpu"), name="gpu", restart_policy=QUICK_RESTARTS)
    name, _ = submit(job)  # the cluster has CPU nodes only
    with pytest.raises(SparkApplicationFailed) as raised:
        wait(name, startup_timeout=30)
    message = str(raised.value)
    assert message.startswith(f"SparkApplication {name} in namespace {cluster.namespace} did not start "
                              "within 30 s (RUNNING): executor ")
    assert ("Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
            in message), message
    assert message.endswith("; the application was deleted")
    cluster.wait_until("the application, its driver and its executors are gone",
                       lambda: cluster.application(name) is None and not cluster.pods("gpu-"), timeout=60)
    assert cluster.history.created("Pod", "gpu-") == 3  # the driver and its two executors


def _webhook(cluster) -> harness.Process:
    return next(p for p in cluster.plane.processes if p.name == "spark-operator-webhook")


def test_the_webhook_not_answering_is_backed_off_then_the_application_is_created(cluster, monkeypatch):
    monkeypatch.setattr(kubernetes_hook, "CREATE_RETRY_WAIT", (0.5, 2.0))
    webhook = _webhook(cluster)
    os.killpg(webhook.popen.pid, signal.SIGSTOP)  # a webhook pod being rolled out: calls time out
    resumed = threading.Timer(12, os.killpg, (webhook.popen.pid, signal.SIGCONT))
    resumed.start()
    try:
        name, _ = submit(scenario_job("hook"))
    finally:
        resumed.cancel()
        os.killpg(webhook.popen.pid, signal.SIGCONT)
    assert cluster.history.settled_created("SparkApplication", "hook-") == 1
    assert cluster.application(name)["metadata"]["name"] == name


def test_the_webhook_never_answering_fails_naming_it(cluster, monkeypatch):
    monkeypatch.setattr(kubernetes_hook, "CREATE_RETRY_WAIT", (0.5, 2.0))
    monkeypatch.setattr(kubernetes_hook, "CREATE_RETRY_SECONDS", 15.0)
    webhook = _webhook(cluster)
    os.killpg(webhook.popen.pid, signal.SIGSTOP)
    try:
        with pytest.raises(SparkApplicationApiError) as raised:
            submit(scenario_job("down"))
    finally:
        os.killpg(webhook.popen.pid, signal.SIGCONT)
    message = str(raised.value)
    assert message.startswith("Creating SparkApplication down-")
    assert ("the API server's last answer: HTTP 500: Internal error occurred: failed calling webhook"
            in message)
    assert harness.SPARK_OPERATOR_WEBHOOK in message or "sparkoperator.k8s.io" in message
    assert raised.value.status == 500 and cluster.history.created("SparkApplication", "down-") == 0


def test_a_finished_leftover_is_replaced_twenty_times_without_a_submission_failure(cluster):
    job = scenario_job("again")
    uids = []
    for attempt in range(20):
        name, _ = submit(job)  # the same run, cleared: from the second on, 409 → replace the leftover
        uids.append(cluster.application(name)["metadata"]["uid"])
        wait(name, startup_timeout=60)
        assert states.application_state(cluster.application(name)) == "COMPLETED", attempt
    assert len(set(uids)) == 20
    assert "SUBMISSION_FAILED" not in cluster.history.states("again-")
    assert cluster.history.created("SparkApplication", "again-") == 20
    assert cluster.history.created("Pod", "again-") == 20
    assert cluster.pods("again-") == [f"{name}-driver"]  # the last one's; the others were collected


def test_an_application_being_deleted_is_waited_out_not_adopted(cluster, capsys):
    from kubernetes import client
    name, _ = submit(scenario_job("deleting"))
    cluster.wait_until("its driver runs", lambda: "RUNNING" in cluster.history.states("deleting-"))
    first_uid = cluster.application(name)["metadata"]["uid"]
    hold = {"metadata": {"finalizers": ["flight-delays.test/hold"]}}
    with cluster.plane.api_client() as api:
        custom = client.CustomObjectsApi(api)
        custom.patch_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name, hold)
        custom.delete_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name)
        assert cluster.application(name)["metadata"]["deletionTimestamp"]

        def release() -> None:
            custom.patch_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name,
                                                  {"metadata": {"finalizers": None}})
        timer = threading.Timer(4, release)
        timer.start()
        try:
            assert submit(scenario_job("deleting"))[0] == name  # the retry of the same run
        finally:
            timer.join()
    assert "is being deleted; creating it again once it is gone" in capsys.readouterr().out
    assert cluster.application(name)["metadata"]["uid"] != first_uid
    assert cluster.history.created("SparkApplication", "deleting-") == 2
    with cluster.plane.api_client() as api:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, PLURAL, name)


def test_killing_the_deferred_task_deletes_its_application_and_pods(cluster):
    name, _ = submit(scenario_job("killed"))
    _, trigger, _ = defer(name)
    cluster.wait_until("its driver runs", lambda: "RUNNING" in cluster.history.states("killed-"))
    asyncio.run(trigger.on_kill())  # what Airflow 3.3's triggerer calls when the user marks it failed
    cluster.wait_until("the application and its driver pod are gone",
                       lambda: cluster.application(name) is None and not cluster.pods("killed-"), timeout=60)


def test_ttl_cleanup_after_the_trigger_fired_still_succeeds(cluster):
    # kept 6 s after it ended: longer than the trigger's poll (0.5 s), shorter than the sensor's resumption
    name, _ = submit(scenario_job("ttl", time_to_live_seconds=6))
    sensor, trigger, ti = defer(name)
    event = fire(trigger)
    assert event["verdict"] == "terminal" and event["state"] == "COMPLETED"
    cluster.wait_until("the operator removed it (timeToLiveSeconds)",
                       lambda: cluster.application(name) is None)
    sensor.execute_complete({"ti": ti}, event)
    assert [key for key, _ in ti.pushed] == ["_link_SparkUiLink", "cost", "_link_SparkHistoryLink"]


def test_a_trigger_rebuilt_by_a_triggerer_restart_fires_on_completion(cluster):
    name, _ = submit(scenario_job("restart"))
    sensor, trigger, ti = defer(name)

    async def scenario() -> dict:
        events = trigger.run()
        first = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(2)
        assert not first.done()
        first.cancel()  # the triggerer goes away mid-wait; a new one rebuilds the trigger from the DB
        with contextlib.suppress(asyncio.CancelledError):
            await first
        await events.aclose()
        _, kwargs = trigger.serialize()
        return await first_event(type(trigger)(**kwargs), 120)

    event = asyncio.run(scenario())
    assert (event["verdict"], event["state"]) == ("terminal", "COMPLETED")
    sensor.execute_complete({"ti": ti}, event)
    assert cluster.history.created("SparkApplication", "restart-") == 1
