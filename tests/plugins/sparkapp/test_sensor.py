from __future__ import annotations

import pytest

from sparkapp import states
from sparkapp.local_backend import LocalSparkApplicationClient
from sparkapp.sensors.spark_application import SparkApplicationFailed, SparkApplicationSensor

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


def test_only_terminal_states_are_terminal():
    assert states.TERMINAL_STATES == {"COMPLETED", "FAILED"}
    assert WAITING_STATES == [
        "", "FAILING", "INVALIDATING", "PENDING_RERUN", "RESUMING", "RUNNING", "SUBMISSION_FAILED",
        "SUBMITTED", "SUCCEEDING", "SUSPENDED", "SUSPENDING", "UNKNOWN",
    ]


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


@pytest.mark.parametrize(
    ("driver_info", "expected"),
    [
        ({"webUIAddress": "10.0.0.7:4040", "webUIIngressAddress": "spark.example.com/features-1"},
         "http://spark.example.com/features-1"),
        ({"webUIAddress": "10.0.0.7:4040"}, "http://10.0.0.7:4040"),
        ({"webUIIngressAddress": "https://spark.example.com/x"}, "https://spark.example.com/x"),
        ({}, None),
    ],
)
def test_spark_ui_url_prefers_the_ingress(driver_info, expected):
    from sparkapp.links import spark_ui_url

    assert spark_ui_url({"status": {"driverInfo": driver_info}}) == expected


def test_plugin_registers_every_extra_link():
    from extra_links_plugin import ExtraLinksPlugin

    from flight_delays.operators import DataDocsLink, MlflowRunLink, RegisterModelOperator
    from sparkapp.links import SparkHistoryLink, SparkUiLink

    assert [type(link) for link in ExtraLinksPlugin.operator_extra_links] == [
        SparkUiLink, SparkHistoryLink, DataDocsLink, MlflowRunLink]
    sensor_links = [link.name for link in SparkApplicationSensor.operator_extra_links]
    assert sensor_links == ["Spark UI", "Spark History"]
    assert [link.name for link in RegisterModelOperator.operator_extra_links] == ["MLflow run"]


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
    from tests.plugins.sparkapp.conftest import RecordingTaskInstance

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
    from tests.plugins.sparkapp.conftest import RecordingTaskInstance

    monkeypatch.delenv("SPARK_HISTORY_SERVER_URL", raising=False)
    ti = RecordingTaskInstance()
    with pytest.raises(SparkApplicationFailed, match="FAILED: executor lost"):
        finished_application(tmp_path, states.FAILED).poke({"ti": ti})
    assert ti.pushed == [("cost", EXPECTED_COST)]  # no history server configured: no link
