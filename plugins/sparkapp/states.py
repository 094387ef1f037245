"""Application states of the Spark Operator (``status.applicationState.state``, CRD v1beta2).

Only COMPLETED and FAILED are terminal: SUBMISSION_FAILED, FAILING, PENDING_RERUN and UNKNOWN can
still recover under the application's restart policy, so a client must keep waiting through them.
"""

from __future__ import annotations

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
