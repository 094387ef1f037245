"""The seam between the operators and where SparkApplications run.

The submit operator and the sensor talk to a :class:`SparkApplicationClient` and nothing else, so the
same DAG runs on one machine (:mod:`sparkapp.hooks.local`) and, through the Kubernetes API, on a
cluster with the Spark Operator (:mod:`sparkapp.hooks.kubernetes`). Objects in and out are
SparkApplication manifests with the CRD's ``status`` shape. This module is the Protocol and its errors
only, which both backends import; choosing one is :mod:`sparkapp.backends`.
"""

from __future__ import annotations

from typing import Protocol


class ApplicationNotFound(LookupError):
    """No SparkApplication of that name exists in that namespace."""


class ApplicationAlreadyExists(RuntimeError):
    """A SparkApplication of that name already exists (HTTP 409 AlreadyExists)."""


class SparkApplicationApiError(RuntimeError):
    """The API refused a request for good (401, 403, 422, …) or never answered.

    :param status: the HTTP status, or None when no answer came.
    """

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class SparkApplicationClient(Protocol):
    """Creates SparkApplications and reads them back."""

    def resolve_namespace(self, namespace: str | None) -> str:
        """The namespace to use when the task names none (the connection's, or ``default``)."""
        ...

    def create_application(self, manifest: dict) -> dict:
        """Create the application described by ``manifest`` and return the stored object.

        Raise :class:`ApplicationAlreadyExists` when the name is taken.
        """
        ...

    def get_application(self, name: str, namespace: str) -> dict:
        """Return the application with its current ``status``; raise :class:`ApplicationNotFound`."""
        ...

    def delete_application(self, name: str, namespace: str) -> bool:
        """Request the application's deletion; return False if it did not exist.

        On a cluster it may still be read for a while, with ``metadata.deletionTimestamp`` set,
        until its pods and other dependents are gone.
        """
        ...

    def read_driver_log(self, application: dict, tail_lines: int) -> list[str] | None:
        """The last log lines of ``application``'s driver, or None where there is no driver pod to
        read. Raise :class:`SparkApplicationApiError` when the read fails."""
        ...

    def pending_reason(self, application: dict) -> str | None:
        """Why ``application`` has not started: its driver pod's reason, or, once the driver runs, a
        pending executor pod's (e.g. ``Unschedulable: … Insufficient nvidia.com/gpu``). Raise
        :class:`SparkApplicationApiError` when the read fails."""
        ...

    def check_access(self, namespace: str | None) -> str:
        """Check that applications can be submitted to ``namespace`` (the connection resolves and,
        on a cluster, the API answers and lets us list them); return what was reached.

        Raise :class:`SparkApplicationApiError` (or the connection lookup's error) when not.
        """
        ...
