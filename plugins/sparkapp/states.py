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


def _timestamp(value: str) -> datetime:
    """A Kubernetes ``metav1.Time`` (RFC 3339, ``Z``; MicroTime's fraction allowed) as UTC."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def _seconds_since(value: str | None, now: datetime | None) -> float:
    if not value:
        return 0.0
    return ((now or datetime.now(timezone.utc)) - _timestamp(value)).total_seconds()


def age_seconds(application: dict, now: datetime | None = None) -> float:
    """Seconds since the application's ``creationTimestamp`` (0 when it has none)."""
    return _seconds_since(application.get("metadata", {}).get("creationTimestamp"), now)


def attempt_seconds(application: dict, now: datetime | None = None) -> float:
    """Seconds since the current submission attempt: ``status.lastSubmissionAttemptTime``, which the
    operator sets on every submission, a rerun under ``restartPolicy: OnFailure`` included; before
    the first submission, since the application's creation."""
    submitted = application.get("status", {}).get("lastSubmissionAttemptTime")
    return _seconds_since(submitted, now) if submitted else age_seconds(application, now)


def driver_pod_name(application: dict) -> str | None:
    """The driver pod the operator recorded (``status.driverInfo.podName``), or None before it has."""
    return application.get("status", {}).get("driverInfo", {}).get("podName") or None


#: ``status.executorState`` of an executor pod not scheduled or started yet.
EXECUTOR_PENDING = "PENDING"


def pending_executors(application: dict) -> list[str]:
    """The executor pods that the operator records as PENDING (``status.executorState``), by name."""
    executors = application.get("status", {}).get("executorState") or {}
    return sorted(pod for pod, state in executors.items() if state == EXECUTOR_PENDING)


def executors_stuck(application: dict) -> bool:
    """True while the driver runs and every executor it asked for is still PENDING: the application
    cannot make progress (no node fits them, e.g. no free GPU)."""
    executors = application.get("status", {}).get("executorState") or {}
    return application_state(application) == RUNNING and bool(executors) and all(
        state == EXECUTOR_PENDING for state in executors.values())


def is_being_deleted(application: dict) -> bool:
    """True once deletion was requested (``metadata.deletionTimestamp``): it will be gone soon."""
    return bool(application.get("metadata", {}).get("deletionTimestamp"))


def waiting_verdict(application: dict, *, startup_timeout: float, deadline: float) -> str | None:
    """What ends the wait: "terminal", "startup_timeout", "deadline", or None to keep waiting.

    The start-up clock runs from the current submission attempt (:func:`attempt_seconds`), so a
    rerun after a driver failure gets its own ``startup_timeout``; it holds while the application is
    new or SUBMITTED, and while its driver runs with every executor still pending
    (:func:`executors_stuck`). The overall ``deadline`` runs from the application's creation, across
    reruns.
    """
    state = application_state(application)
    if state in TERMINAL_STATES:
        return "terminal"
    starting = state in STARTUP_STATES or executors_stuck(application)
    if starting and attempt_seconds(application) > startup_timeout:
        return "startup_timeout"
    if age_seconds(application) > deadline:
        return "deadline"
    return None
