"""The Kubernetes backend against a fake API server over real HTTP, with the real ``kubernetes``
client, and a simulated Spark Operator walking scripted scenarios.

=============================================  ==========================================================
scenario                                       expected outcome
=============================================  ==========================================================
straight success                               task succeeds; driver log tail in the task log; 1 app
driver failure                                 task fails with the app's errorMessage
SUBMISSION_FAILED, then COMPLETED              waited through; succeeds
FAILING → PENDING_RERUN → RUNNING → COMPLETED  waited through; succeeds
UNKNOWN → RUNNING → COMPLETED                  waited through; succeeds
stuck in "" (never picked up)                  start-up deadline: fails naming jobNamespaces; app deleted
pending on insufficient GPU                    start-up deadline: fails with the pod's Unschedulable
                                               message; app deleted
driver running, every executor pending         start-up deadline: fails with the executor pod's
                                               Unschedulable message; app deleted
running past the overall deadline              fails; app deleted
deleted from outside while waiting             fails: "no longer exists"
5xx on create, object stored anyway            read back, adopted: exactly 1 app
connection reset on create, nothing stored     read back (404), created again: exactly 1 app
worker crash between create and wait (retry)   409 → same run and spec → adopted: 1 app, 2 POSTs
retry after the app FAILED                     409 → failed leftover → deleted and recreated: 1 app
task cleared after the app COMPLETED           409 → finished leftover → recreated: the stage reruns
another run's app still RUNNING                refused with a conflict naming the other run; untouched
a finished app this task did not create        refused with a conflict naming its creator; untouched
retry while the app is being deleted           not adopted: waits until it is gone, then creates it
the driver pod has another name                the log is read from status.driverInfo.podName
5xx on the driver-log read after COMPLETED     retried; still failing: the task succeeds, with a warning
pod read failing at the start-up deadline      the app is still deleted; the reason says the read failed
pods refused by Pod Security                   fails naming the Spark Operator's webhook
task killed while waiting                      on_kill deletes the app: 0 apps
429 with Retry-After / connection resets       survived (reads are retried with backoff)
on reads
401 on create, 403 on read                     fails at once with the API's message
=============================================  ==========================================================

The hook's own answers to the API (a 422 on an invalid name, 404s, refused listing) are tested in
``tests/plugins/sparkapp/hooks/test_kubernetes.py``.
"""

from __future__ import annotations

import re
import threading

import pytest

from sparkapp import states
from sparkapp.client import SparkApplicationApiError
from sparkapp.operators.spark_application import SparkApplicationConflict
from sparkapp.sensors.spark_application import SparkApplicationFailed
from testing.kubernetes_api import Fault
from tests.plugins.sparkapp.fakes import NAMESPACE, RecordingTaskInstance, sensor_for, submit, wait

APPS_PATH = r"/sparkapplications"


def test_straight_success_copies_the_driver_log_and_links_the_spark_ui(fake_k8s, controller, capsys,
                                                                      monkeypatch):
    monkeypatch.setenv("SPARK_HISTORY_SERVER_URL", "https://spark-history.example.com")
    name = submit()
    ti = RecordingTaskInstance()
    assert wait(sensor_for(name), controller, ti=ti)
    (ui, (cost_key, cost), (history_key, history)) = ti.pushed
    assert ui == ("_link_SparkUiLink", "http://10.0.0.7:4040")
    # The cost inputs of 1 executor of 1 core (JOB), over the status' submission-to-termination time.
    stored = fake_k8s.apps[(NAMESPACE, name)]["status"]
    assert (stored["lastSubmissionAttemptTime"], stored["terminationTime"]) != (None, None)
    assert cost_key == "cost" and cost["application"] == name
    assert (cost["executors"], cost["executor_cores"], cost["gpus"], cost["gpu_seconds"]) == (1, 1, 0, 0.0)
    assert cost["executor_core_seconds"] == cost["driver_core_seconds"] == cost["wall_seconds"] >= 0
    assert history_key == "_link_SparkHistoryLink"
    assert history == f"https://spark-history.example.com/history/{stored['sparkApplicationId']}/jobs/"
    assert fake_k8s.created == [name]
    out = capsys.readouterr().out
    assert "Last 2 line(s) of the driver log" in out and "wrote 827 rows" in out
    for state in ("SUBMITTED", "RUNNING", "SUCCEEDING", "COMPLETED"):
        assert out.count(f"in namespace {NAMESPACE} is {state}") == 1


def test_stored_application_is_the_rendered_manifest_with_server_fields(fake_k8s, controller):
    name = submit()
    stored = fake_k8s.apps[(NAMESPACE, name)]
    assert stored["spec"]["arguments"] == ["--day", "2013-06-30"]
    run_id = "airflow.apache.org/run-id"
    assert stored["metadata"]["annotations"][run_id] == "scheduled__2013-06-30T00:00:00+00:00"
    assert stored["metadata"]["labels"][run_id] == "scheduled__2013-06-30T00_00_00_00_00"
    assert {"uid", "resourceVersion", "creationTimestamp"} <= set(stored["metadata"])
    assert "status" not in stored


def test_driver_failure_fails_with_the_error_message(fake_k8s, controller):
    controller.script("features", [{"state": "SUBMITTED", "pod": "Pending"},
                                   {"state": "RUNNING", "pod": "Running"},
                                   {"state": "FAILED", "pod": "Failed", "log": ["ValueError: bad row"],
                                    "error": "driver container failed with ExitCode: 1, Reason: Error"}])
    name = submit()
    with pytest.raises(SparkApplicationFailed) as raised:
        wait(sensor_for(name), controller)
    assert str(raised.value) == (f"SparkApplication {name} in namespace {NAMESPACE} FAILED: "
                                 "driver container failed with ExitCode: 1, Reason: Error")


@pytest.mark.parametrize("path", [
    ["SUBMISSION_FAILED", "SUBMITTED", "RUNNING", "COMPLETED"],
    ["RUNNING", "FAILING", "PENDING_RERUN", "SUBMITTED", "RUNNING", "COMPLETED"],
    ["RUNNING", "UNKNOWN", "RUNNING", "SUCCEEDING", "COMPLETED"],
    ["RUNNING", "SUSPENDING", "SUSPENDED", "RESUMING", "RUNNING", "COMPLETED"],
])
def test_recoverable_states_are_waited_through(fake_k8s, controller, path):
    controller.script("features", [{"state": s, "pod": "Running"} for s in path])
    name = submit()
    assert wait(sensor_for(name), controller)
    assert fake_k8s.created == [name] and list(fake_k8s.apps) == [(NAMESPACE, name)]


def test_never_picked_up_fails_at_the_startup_deadline(fake_k8s, controller):
    name = submit()  # no controller step: the operator never sets a state
    fake_k8s.age(NAMESPACE, name, 120)
    with pytest.raises(SparkApplicationFailed) as raised:
        sensor_for(name, startup_timeout=60).poke({"ti": RecordingTaskInstance()})
    assert str(raised.value) == (
        f"SparkApplication {name} in namespace {NAMESPACE} did not start within 60 s (new): the Spark "
        "Operator never picked it up: is the namespace among its jobNamespaces?; the application was deleted")
    assert fake_k8s.apps == {}


def test_pending_on_insufficient_gpu_fails_with_the_pod_reason(fake_k8s, controller):
    message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    controller.script("features", [{"state": "SUBMITTED", "pod": "Pending", "unschedulable": message}])
    name = submit()
    sensor = sensor_for(name, startup_timeout=300)
    controller.step()
    assert sensor.poke({"ti": RecordingTaskInstance()}) is False
    fake_k8s.age(NAMESPACE, name, 301)
    expected = (f"did not start within 300 s (SUBMITTED): Unschedulable: {message}; "
                "the application was deleted")
    with pytest.raises(SparkApplicationFailed, match=re.escape(expected)):
        sensor.poke({"ti": RecordingTaskInstance()})
    assert fake_k8s.apps == {}


def test_executors_pending_on_insufficient_gpu_fail_at_the_startup_deadline(fake_k8s, controller):
    message = ("0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node "
               "affinity/selector.")
    pending = {"train-exec-1": "PENDING", "train-exec-2": "PENDING"}
    controller.script("features", [{"state": "SUBMITTED", "pod": "Pending"},
                                   {"state": "RUNNING", "pod": "Running", "executors": pending,
                                    "executor_unschedulable": message}])
    name = submit()
    controller.step()
    controller.step()
    sensor = sensor_for(name, startup_timeout=300)
    assert sensor.poke({"ti": RecordingTaskInstance()}) is False
    fake_k8s.age(NAMESPACE, name, 301)
    expected = (f"did not start within 300 s (RUNNING): executor train-exec-1: Unschedulable: {message}; "
                "the application was deleted")
    with pytest.raises(SparkApplicationFailed, match=f"{re.escape(expected)}$"):
        sensor.poke({"ti": RecordingTaskInstance()})
    assert fake_k8s.apps == {}


def test_running_past_the_deadline_is_deleted(fake_k8s, controller):
    name = submit()
    controller.step()
    controller.step()
    fake_k8s.age(NAMESPACE, name, 3601)
    with pytest.raises(SparkApplicationFailed, match="did not finish within 3600 s \\(still RUNNING\\)"):
        sensor_for(name, deadline=3600).poke({"ti": RecordingTaskInstance()})
    assert fake_k8s.apps == {}


def test_application_deleted_from_outside_fails_clearly(fake_k8s, controller):
    controller.script("features", [{"state": "RUNNING", "pod": "Running"}, {"delete": True}])
    name = submit()
    with pytest.raises(SparkApplicationFailed) as raised:
        wait(sensor_for(name), controller)
    assert str(raised.value) == (f"SparkApplication {name} in namespace {NAMESPACE} no longer exists: "
                                 "it was deleted while this task waited on it (as marking this task "
                                 "failed or clearing it does); clear the submit task too to submit it again")


def test_5xx_on_create_with_the_object_stored_is_adopted(fake_k8s, controller):
    fake_k8s.inject(Fault("POST", APPS_PATH, 503, store_anyway=True))
    name = submit()
    assert fake_k8s.count("POST", APPS_PATH) == 1
    assert fake_k8s.created == [name]
    assert wait(sensor_for(name), controller)


def test_connection_reset_on_create_without_storing_creates_once_more(fake_k8s, controller):
    fake_k8s.inject(Fault("POST", APPS_PATH, None))
    name = submit()
    assert fake_k8s.count("POST", APPS_PATH) == 2
    assert fake_k8s.created == [name]


def test_retry_after_a_worker_crash_adopts_the_application(fake_k8s, controller):
    name = submit()
    controller.step()
    assert submit() == name  # the retry of the same run
    assert fake_k8s.count("POST", APPS_PATH) == 2
    assert fake_k8s.created == [name]
    assert wait(sensor_for(name), controller)


def test_retry_after_the_application_failed_replaces_it(fake_k8s, controller):
    controller.script("features", [{"state": "FAILED", "pod": "Failed", "error": "OOMKilled"}])
    name = submit()
    controller.step()
    first_uid = fake_k8s.apps[(NAMESPACE, name)]["metadata"]["uid"]
    controller.script("features", [{"state": "COMPLETED", "pod": "Succeeded"}])
    assert submit() == name
    assert fake_k8s.created == [name, name]
    assert fake_k8s.delete_options == [{"propagationPolicy": "Foreground"}]  # its pods went first
    assert fake_k8s.apps[(NAMESPACE, name)]["metadata"]["uid"] != first_uid
    assert wait(sensor_for(name), controller)


def test_cleared_task_reruns_its_completed_application(fake_k8s, controller):
    name = submit()
    for _ in range(4):
        controller.step()
    assert states.application_state(fake_k8s.apps[(NAMESPACE, name)]) == "COMPLETED"
    assert submit() == name  # the user cleared the task: the stage must really run again
    assert fake_k8s.created == [name, name]
    assert "status" not in fake_k8s.apps[(NAMESPACE, name)]


def test_another_runs_running_application_is_left_alone(fake_k8s, controller):
    name = submit(run_id="backfill__2013-06-30T00:00:00+00:00")
    controller.step()
    controller.step()
    with pytest.raises(SparkApplicationConflict, match="is RUNNING, created by run backfill__2013-06-30"):
        submit(run_id="manual__2013-07-01T00:00:00+00:00")
    assert fake_k8s.created == [name]
    assert states.application_state(fake_k8s.apps[(NAMESPACE, name)]) == "RUNNING"


def test_killed_task_deletes_its_application(fake_k8s, controller):
    name = submit()
    controller.step()
    sensor_for(name).on_kill()
    assert fake_k8s.apps == {} and fake_k8s.count("DELETE", name) == 1
    # in the foreground: the application outlives its driver pod and ConfigMaps, so that the same name
    # is never created again while they are still there
    assert [options.get("propagationPolicy") for options in fake_k8s.delete_options] == ["Foreground"]


def test_429_with_retry_after_on_reads_is_survived(fake_k8s, controller):
    name = submit()
    fake_k8s.inject(Fault("GET", name, 429, times=2, headers={"Retry-After": "0"}))
    assert wait(sensor_for(name), controller)
    assert fake_k8s.count("GET", f"sparkapplications/{name}$") >= 6


def test_connection_reset_on_reads_is_survived(fake_k8s, controller):
    name = submit()
    fake_k8s.inject(Fault("GET", f"sparkapplications/{name}$", None, times=2))
    assert wait(sensor_for(name), controller)


def test_forbidden_read_fails_at_once_with_the_api_message(fake_k8s):
    name = submit()
    fake_k8s.inject(Fault("GET", f"sparkapplications/{name}$", 403))
    expected = (f"Reading SparkApplication {name} in namespace {NAMESPACE} failed with HTTP 403: "
                "injected Forbidden")
    with pytest.raises(SparkApplicationApiError, match=re.escape(expected)):
        sensor_for(name).poke({"ti": RecordingTaskInstance()})
    assert fake_k8s.count("GET", f"sparkapplications/{name}$") == 1


def test_unauthorized_create_fails_at_once_with_the_api_message(fake_k8s):
    fake_k8s.inject(Fault("POST", APPS_PATH, 401))
    with pytest.raises(SparkApplicationApiError, match="failed with HTTP 401: injected Unauthorized"):
        submit()
    assert fake_k8s.count("POST", APPS_PATH) == 1 and fake_k8s.apps == {}


def test_namespace_comes_from_the_connection_when_the_task_names_none(fake_k8s):
    name = submit()
    assert (NAMESPACE, name) in fake_k8s.apps


def test_a_finished_application_this_task_did_not_create_is_left_alone(fake_k8s, controller):
    name = submit()
    for _ in range(4):
        controller.step()
    for key in ("airflow.apache.org/dag-id", "airflow.apache.org/task-id"):  # created by hand, say
        del fake_k8s.apps[(NAMESPACE, name)]["metadata"]["annotations"][key]
    with pytest.raises(SparkApplicationConflict) as raised:
        submit()
    assert str(raised.value) == (
        f"SparkApplication {name} in namespace {NAMESPACE} already exists (COMPLETED) and was not created by "
        f"this task (its creator: not Airflow); it is left alone: delete it (kubectl delete sparkapplication "
        f"{name} -n {NAMESPACE}), then retry this task")
    assert fake_k8s.created == [name] and fake_k8s.count("DELETE", name) == 0


def test_an_application_being_deleted_is_not_adopted(fake_k8s, controller):
    name = submit()
    controller.step()
    fake_k8s.hold_deletion(NAMESPACE, name)
    sensor_for(name).on_kill()  # deletion requested; the garbage collector is still at work
    assert fake_k8s.apps[(NAMESPACE, name)]["metadata"]["deletionTimestamp"]
    threading.Timer(1.5, fake_k8s.finish_deletion, (NAMESPACE, name)).start()
    assert submit() == name  # the retry waits until it is gone, then creates it anew
    assert fake_k8s.created == [name, name]
    assert "deletionTimestamp" not in fake_k8s.apps[(NAMESPACE, name)]["metadata"]
    assert wait(sensor_for(name), controller)


def test_the_driver_log_is_read_from_the_pod_the_operator_recorded(fake_k8s, controller, capsys):
    controller.script("features", [{"state": "RUNNING", "pod": "Running", "pod_name": "spark-1a2b-driver",
                                    "log": ["wrote 5 rows"]},
                                   {"state": "COMPLETED", "pod": "Succeeded",
                                    "pod_name": "spark-1a2b-driver"}])
    name = submit()
    assert wait(sensor_for(name), controller)
    assert "wrote 5 rows" in capsys.readouterr().out
    assert fake_k8s.count("GET", "pods/spark-1a2b-driver/log$") == 1
    assert fake_k8s.count("GET", f"pods/{name}-driver") == 0


def test_a_failing_driver_log_read_after_completed_is_a_warning(fake_k8s, controller, capsys):
    name = submit()
    for _ in range(3):
        controller.step()
    fake_k8s.inject(Fault("GET", f"pods/{name}-driver/log$", 500, times=99))
    ti = RecordingTaskInstance()
    assert wait(sensor_for(name), controller, ti=ti)
    assert [key for key, _ in ti.pushed] == ["_link_SparkUiLink", "cost"]
    out = capsys.readouterr().out
    assert (f"The driver log of {name} could not be copied here: Reading the driver log of SparkApplication "
            f"{name} in namespace {NAMESPACE} failed with HTTP 500: injected InternalError") in out


def test_a_failing_pod_read_at_the_startup_deadline_still_deletes_the_application(fake_k8s, controller):
    controller.script("features", [{"state": "SUBMITTED", "pod": "Pending"}])
    name = submit()
    controller.step()
    fake_k8s.age(NAMESPACE, name, 301)
    fake_k8s.inject(Fault("GET", f"pods/{name}-driver$", 503, times=99))
    with pytest.raises(SparkApplicationFailed) as raised:
        sensor_for(name, startup_timeout=300).poke({"ti": RecordingTaskInstance()})
    assert str(raised.value) == (
        f"SparkApplication {name} in namespace {NAMESPACE} did not start within 300 s (SUBMITTED): the pod "
        f"could not be read (Reading pod {name}-driver of SparkApplication {name} in namespace "
        f"{NAMESPACE} failed with HTTP 503: injected InternalError); the application was deleted")
    assert fake_k8s.apps == {}


def test_pods_refused_by_pod_security_name_the_webhook(fake_k8s, controller):
    refused = ('failed to run spark-submit: pods "features-driver" is forbidden: violates PodSecurity '
               '"restricted:latest": allowPrivilegeEscalation != false')
    controller.script("features", [{"state": "SUBMISSION_FAILED", "error": refused},
                                   {"state": "FAILED", "error": refused}])
    name = submit()
    with pytest.raises(SparkApplicationFailed) as raised:
        wait(sensor_for(name), controller)
    assert str(raised.value) == (
        f"SparkApplication {name} in namespace {NAMESPACE} FAILED: {refused} (the pods lack what the Spark "
        "Operator's mutating webhook adds (security contexts, volumes, tolerations): is its webhook running "
        "(Helm value webhook.enable=true) and does its MutatingWebhookConfiguration select this namespace?)")
