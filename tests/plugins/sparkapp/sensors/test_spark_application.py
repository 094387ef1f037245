"""The sensor: what it does in each state of the application it waits on, what it records at the end,
and its deferral to the trigger."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from sparkapp import states
from sparkapp.hooks.local import LocalSparkApplicationClient
from sparkapp.sensors.spark_application import SparkApplicationFailed, SparkApplicationSensor
from tests.plugins.sparkapp.fakes import CONN_ID, NAMESPACE, RecordingTaskInstance, sensor_for, submit

WAITING_STATES = sorted(states.ALL_STATES - states.TERMINAL_STATES)


def sensor_reading(tmp_path, state: str, error: str | None = None) -> SparkApplicationSensor:
    client = LocalSparkApplicationClient(state_dir=tmp_path)
    application_state = {"state": state} if error is None else {"state": state, "errorMessage": error}
    client._save({"metadata": {"name": "train-20130630-0123abcd", "namespace": "ml-dev"},
                  "status": {"applicationState": application_state}})
    sensor = SparkApplicationSensor(task_id="wait", application_name="train-20130630-0123abcd",
                                    namespace="ml-dev")
    sensor.client = client
    return sensor


def test_completed_application_satisfies_the_sensor(tmp_path):
    assert sensor_reading(tmp_path, states.COMPLETED).poke({}) is True


@pytest.mark.parametrize("state", WAITING_STATES)
def test_sensor_waits_through_every_non_terminal_state(tmp_path, state):
    assert sensor_reading(tmp_path, state, error="executor lost").poke({}) is False


def test_failed_application_fails_the_sensor_with_its_error_message(tmp_path):
    sensor = sensor_reading(tmp_path, states.FAILED, error="driver container failed with ExitCode: 1")
    with pytest.raises(SparkApplicationFailed) as raised:
        sensor.poke({})
    assert str(raised.value) == (
        "SparkApplication train-20130630-0123abcd in namespace ml-dev FAILED: "
        "driver container failed with ExitCode: 1"
    )


def test_sensor_logs_each_state_once_when_entered(tmp_path, capsys):
    sensor = sensor_reading(tmp_path, states.RUNNING)
    sensor.poke({})
    sensor.poke({})
    # Airflow 3 task logging is structlog, written to stdout.
    assert capsys.readouterr().out.count(
        "SparkApplication train-20130630-0123abcd in namespace ml-dev is RUNNING") == 1


def finished_application(tmp_path, state: str) -> SparkApplicationSensor:
    client = LocalSparkApplicationClient(state_dir=tmp_path)
    client._save({
        "metadata": {"name": "train-20130630-0123abcd", "namespace": "ml-dev"},
        "spec": {"driver": {"cores": 1}, "executor": {"cores": 4, "instances": 2,
                                                      "gpu": {"name": "nvidia.com/gpu", "quantity": 1}}},
        "status": {"applicationState": {"state": state, "errorMessage": "executor lost"},
                   "lastSubmissionAttemptTime": "2013-06-30T01:00:00Z",
                   "terminationTime": "2013-06-30T01:10:00Z",
                   "sparkApplicationId": "spark-5f2c"},
    })
    sensor = SparkApplicationSensor(task_id="wait", application_name="train-20130630-0123abcd",
                                    namespace="ml-dev")
    sensor.client = client
    return sensor


EXPECTED_COST = {"application": "train-20130630-0123abcd", "wall_seconds": 600.0, "executors": 2,
                 "executor_cores": 4, "gpus": 2, "driver_core_seconds": 600.0,
                 "executor_core_seconds": 4800.0, "gpu_seconds": 1200.0}


def test_a_finished_application_records_its_cost_and_history_link(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPARK_HISTORY_SERVER_URL", "https://spark-history.example.com/")
    ti = RecordingTaskInstance()
    assert finished_application(tmp_path, states.COMPLETED).poke({"ti": ti}) is True
    assert ti.pushed == [
        ("cost", EXPECTED_COST),
        ("_link_SparkHistoryLink", "https://spark-history.example.com/history/spark-5f2c/jobs/"),
    ]
    assert ("Cost inputs of train-20130630-0123abcd (COMPLETED): 600 s wall, 4800 executor core-seconds "
            "(2 executor(s) x 4 core(s)), 600 driver core-seconds, 1200 GPU-seconds (2 GPU(s))"
            ) in capsys.readouterr().out


def test_a_failed_application_records_its_cost_too_then_fails(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARK_HISTORY_SERVER_URL", raising=False)
    ti = RecordingTaskInstance()
    with pytest.raises(SparkApplicationFailed, match="FAILED: executor lost"):
        finished_application(tmp_path, states.FAILED).poke({"ti": ti})
    assert ti.pushed == [("cost", EXPECTED_COST)]  # no history server configured: no link


def test_sensor_defers_then_acts_on_the_event(fake_k8s, controller):
    name = submit()
    sensor = sensor_for(name, poke_interval=5, startup_timeout=60, deadline=120, timeout=3600)
    before = datetime.now(timezone.utc)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    kwargs = deferred.value.trigger.serialize()[1]
    timeout_at = datetime.fromisoformat(kwargs.pop("timeout_at"))
    assert kwargs == {"application_name": name, "namespace": None, "kubernetes_conn_id": CONN_ID,
                      "poll_interval": 5, "startup_timeout": 60, "deadline": 120}
    hour = timedelta(seconds=3600)
    assert before + hour <= timeout_at <= datetime.now(timezone.utc) + hour
    assert deferred.value.method_name == "execute_complete"
    for _ in range(4):
        controller.step()
    event = {"verdict": "terminal", "state": "COMPLETED", "application": fake_k8s.apps[(NAMESPACE, name)]}
    reads = fake_k8s.count("GET", f"sparkapplications/{name}$")
    assert sensor.execute_complete({"ti": RecordingTaskInstance()}, event) is None
    assert fake_k8s.count("GET", f"sparkapplications/{name}$") == reads  # acts on what the trigger read


def test_after_the_trigger_fired_a_ttl_deleted_application_still_succeeds(fake_k8s, controller, capsys):
    """timeToLiveSeconds may remove a COMPLETED application before the sensor resumes."""
    name = submit()
    for _ in range(4):
        controller.step()
    event = {"verdict": "terminal", "state": "COMPLETED",
             "application": json.loads(json.dumps(fake_k8s.apps[(NAMESPACE, name)]))}
    fake_k8s.delete_app(NAMESPACE, name)  # the operator's TTL cleanup
    ti = RecordingTaskInstance()
    assert sensor_for(name).execute_complete({"ti": ti}, event) is None
    assert [key for key, _ in ti.pushed] == ["_link_SparkUiLink", "cost"]
    assert f"SparkApplication {name} in namespace {NAMESPACE} is COMPLETED" in capsys.readouterr().out


def test_a_trigger_that_found_nothing_or_failed_fails_the_task(fake_k8s):
    sensor = sensor_for("features-20130630-00000000")
    gone = "no longer exists: it was deleted while this task waited"
    with pytest.raises(SparkApplicationFailed, match=gone):
        sensor.execute_complete({"ti": RecordingTaskInstance()}, {"verdict": "not_found"})
    failed = (f"^Waiting on SparkApplication features-20130630-00000000 in namespace {NAMESPACE} failed: "
              "ApiException: 403$")
    with pytest.raises(SparkApplicationFailed, match=failed):
        sensor.execute_complete({"ti": RecordingTaskInstance()}, {"verdict": "error",
                                                                  "message": "ApiException: 403"})


def test_the_sensors_timeout_when_deferred_deletes_the_application_and_fails_without_retry(fake_k8s,
                                                                                           controller):
    name = submit()
    controller.step()
    controller.step()
    event = {"verdict": "timeout", "state": "RUNNING", "application": fake_k8s.apps[(NAMESPACE, name)]}
    with pytest.raises(AirflowSensorTimeout) as raised:
        sensor_for(name, timeout=600).execute_complete({"ti": RecordingTaskInstance()}, event)
    assert str(raised.value) == (f"SparkApplication {name} in namespace {NAMESPACE} was still RUNNING when "
                                 "the sensor's timeout of 600 s ran out; the application was deleted")
    assert fake_k8s.apps == {}
