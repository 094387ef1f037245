"""Cost inputs of SparkApplications: wall time from the status, times the resources of the spec."""

from __future__ import annotations

import pytest

from sparkapp.cost import ApplicationCost, application_cost, total


def application(spec: dict, status: dict) -> dict:
    return {"metadata": {"name": "features-20130630-abcdef12"}, "spec": spec, "status": status}


TIMES = {"lastSubmissionAttemptTime": "2013-06-30T00:00:10Z", "terminationTime": "2013-06-30T00:01:40Z"}


def test_cpu_application_costs_its_executors_cores_for_its_wall_time():
    cost = application_cost(application(
        {"driver": {"cores": 1, "memory": "1g"}, "executor": {"cores": 2, "instances": 3}},
        {"applicationState": {"state": "COMPLETED"}, **TIMES}))
    assert cost == ApplicationCost(application="features-20130630-abcdef12", wall_seconds=90.0, executors=3,
                                   executor_cores=2, gpus=0, driver_core_seconds=90.0,
                                   executor_core_seconds=540.0, gpu_seconds=0.0)


def test_gpus_of_driver_and_executors_count():
    cost = application_cost(application(
        {"driver": {"cores": 2, "gpu": {"name": "nvidia.com/gpu", "quantity": 1}},
         "executor": {"cores": 4, "instances": 2, "gpu": {"name": "nvidia.com/gpu", "quantity": 2}}},
        TIMES))
    assert (cost.gpus, cost.gpu_seconds, cost.driver_core_seconds) == (5, 450.0, 180.0)


def test_spark_defaults_apply_when_the_spec_names_no_resources():
    # The operator's defaults: one executor, one core each, one driver core.
    cost = application_cost(application({}, TIMES))
    assert (cost.executors, cost.executor_cores, cost.executor_core_seconds) == (1, 1, 90.0)


@pytest.mark.parametrize("status", [
    {"applicationState": {"state": "RUNNING"}, "lastSubmissionAttemptTime": "2013-06-30T00:00:10Z"},
    {"applicationState": {"state": "FAILED"}, "terminationTime": "2013-06-30T00:00:10Z"},  # never submitted
    {},
])
def test_no_cost_before_the_end_or_without_a_submission(status):
    assert application_cost(application({"executor": {"cores": 1}}, status)) is None


def test_total_adds_the_figures_of_every_stage():
    costs = [application_cost(application({"executor": {"cores": 1, "instances": 2}}, TIMES)),
             application_cost(application({"executor": {"cores": 4, "instances": 1,
                                                         "gpu": {"name": "nvidia.com/gpu", "quantity": 1}}},
                                          {"lastSubmissionAttemptTime": "2013-06-30T00:00:00Z",
                                           "terminationTime": "2013-06-30T00:10:00Z"}))]
    assert total(costs) == {"wall_seconds": 690.0, "driver_core_seconds": 690.0,
                            "executor_core_seconds": 180.0 + 2400.0, "gpu_seconds": 600.0}
    assert total([]) == {"wall_seconds": 0, "driver_core_seconds": 0, "executor_core_seconds": 0,
                         "gpu_seconds": 0}


def test_a_cost_survives_its_xcom_round_trip():
    cost = application_cost(application({"executor": {"cores": 2, "instances": 2}}, TIMES))
    assert ApplicationCost.from_dict(cost.as_dict()) == cost
