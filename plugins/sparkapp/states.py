"""Application states of the Spark Operator (``status.applicationState.state``, CRD v1beta2), and the
waiting policy built on them.

Only COMPLETED and FAILED are terminal: SUBMISSION_FAILED, FAILING, PENDING_RERUN and UNKNOWN can
still recover under the application's restart policy, so a client must keep waiting through them.
:func:`waiting_verdict` says when a wait ends; the sensor and its trigger both decide with it.
"""

from __future__ import annotations

from datetime import datetime, timezone

NEW = ""
SUBMITTED = "SUBMITTED"
RUNNING = "RUNNING"
SUCCEEDING = "SUCCEEDING"
FAILING = "FAILING"
SUBMISSION_FAILED = "SUBMISSION_FAILED"
PENDING_RERUN = "PENDING_RERUN"
INVALIDATING = "INVALIDATING"
UNKNOWN = "UNKNOWN"
SUSPENDING = "SUSPENDING"
SUSPENDED = "SUSPENDED"
RESUMING = "RESUMING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"

SUCCESS_STATES = frozenset({COMPLETED})
FAILURE_STATES = frozenset({FAILED})
TERMINAL_STATES = SUCCESS_STATES | FAILURE_STATES
ALL_STATES = TERMINAL_STATES | {
    NEW,
    SUBMITTED,
    RUNNING,
    SUCCEEDING,
    FAILING,
    SUBMISSION_FAILED,
    PENDING_RERUN,
    INVALIDATING,
    UNKNOWN,
    SUSPENDING,
    SUSPENDED,
    RESUMING,
}


def application_state(application: dict) -> str:
    """Return ``status.applicationState.state`` of a SparkApplication object ("" while new)."""
    return application.get("status", {}).get("applicationState", {}).get("state", NEW)


def error_message(application: dict) -> str:
    """Return ``status.applicationState.errorMessage``, or "" when the operator recorded none."""
    return application.get("status", {}).get("applicationState", {}).get("errorMessage", "")


#: States of an application that has not started (see the sensor).
STARTUP_STATES = frozenset({NEW, SUBMITTED})


def age_seconds(application: dict, now: datetime | None = None) -> float:
    """Seconds since the application's ``creationTimestamp`` (0 when it has none)."""
    created = application.get("metadata", {}).get("creationTimestamp")
    if not created:
        return 0.0
    started = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return ((now or datetime.now(timezone.utc)) - started).total_seconds()


def waiting_verdict(application: dict, *, startup_timeout: float, deadline: float) -> str | None:
    """What ends the wait: "terminal", "startup_timeout", "deadline", or None to keep waiting."""
    state = application_state(application)
    if state in TERMINAL_STATES:
        return "terminal"
    age = age_seconds(application)
    if state in STARTUP_STATES and age > startup_timeout:
        return "startup_timeout"
    if age > deadline:
        return "deadline"
    return None
