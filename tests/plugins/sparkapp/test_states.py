"""The Spark Operator's application states, and the waiting policy the sensor and the trigger share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sparkapp import states

WAITING_STATES = sorted(states.ALL_STATES - states.TERMINAL_STATES)


def test_only_terminal_states_are_terminal():
    assert states.TERMINAL_STATES == {"COMPLETED", "FAILED"}
    assert WAITING_STATES == [
        "", "FAILING", "INVALIDATING", "PENDING_RERUN", "RESUMING", "RUNNING", "SUBMISSION_FAILED",
        "SUBMITTED", "SUCCEEDING", "SUSPENDED", "SUSPENDING", "UNKNOWN",
    ]


def test_state_and_error_message_of_an_application():
    assert (states.application_state({}), states.error_message({})) == ("", "")
    failed = {"status": {"applicationState": {"state": "FAILED", "errorMessage": "driver OOMKilled"}}}
    assert (states.application_state(failed), states.error_message(failed)) == ("FAILED", "driver OOMKilled")


def test_age_is_counted_from_the_creation_timestamp():
    created = {"metadata": {"creationTimestamp": "2013-06-30T01:00:00Z"}}
    now = datetime(2013, 6, 30, 1, 10, 30, tzinfo=timezone.utc)
    assert states.age_seconds(created, now) == 630.0
    assert states.age_seconds({"metadata": {}}, now) == 0.0


def application(state: str, age: float) -> dict:
    created = datetime.now(timezone.utc) - timedelta(seconds=age)
    return {"metadata": {"creationTimestamp": f"{created:%Y-%m-%dT%H:%M:%SZ}"},
            "status": {"applicationState": {"state": state}}}


@pytest.mark.parametrize(("state", "age", "verdict"), [
    ("COMPLETED", 10, "terminal"),
    ("FAILED", 99999, "terminal"),
    ("", 120, "startup_timeout"),
    ("SUBMITTED", 120, "startup_timeout"),
    ("SUBMITTED", 30, None),
    ("RUNNING", 120, None),  # started: only the overall deadline counts
    ("RUNNING", 3700, "deadline"),
    ("SUBMISSION_FAILED", 3700, "deadline"),
    ("PENDING_RERUN", 120, None),
])
def test_the_waiting_verdict(state, age, verdict):
    assert states.waiting_verdict(application(state, age), startup_timeout=60, deadline=3600) == verdict
    assert states.STARTUP_STATES == {"", "SUBMITTED"}


def test_a_rerun_is_timed_from_its_own_submission():
    application = {"metadata": {"creationTimestamp": "2013-06-30T01:00:00Z"},
                   "status": {"lastSubmissionAttemptTime": "2013-06-30T01:09:00Z",
                              "applicationState": {"state": "SUBMITTED"}}}
    now = datetime(2013, 6, 30, 1, 10, 30, tzinfo=timezone.utc)
    assert (states.age_seconds(application, now), states.attempt_seconds(application, now)) == (630.0, 90.0)
    del application["status"]["lastSubmissionAttemptTime"]  # not submitted yet: since creation
    assert states.attempt_seconds(application, now) == 630.0


@pytest.mark.parametrize(("executors", "verdict"), [
    ({"train-exec-1": "PENDING", "train-exec-2": "PENDING"}, "startup_timeout"),
    ({"train-exec-1": "PENDING", "train-exec-2": "RUNNING"}, None),  # it makes progress
    ({}, None),  # the driver has not asked for executors yet
])
def test_a_running_driver_whose_executors_all_pend_has_not_started(executors, verdict):
    app = application("RUNNING", 120)
    app["status"]["executorState"] = executors
    assert states.waiting_verdict(app, startup_timeout=60, deadline=3600) == verdict
    assert states.pending_executors(app) == sorted(p for p, s in executors.items() if s == "PENDING")
