"""The seam between the operators and where SparkApplications run.

The submit operator and the sensor talk to a :class:`SparkApplicationClient` and nothing else, so the
same DAG runs on one machine (:mod:`sparkapp.local_backend`) and, through the Kubernetes API, on a
cluster with the Spark Operator. Objects in and out are SparkApplication manifests with the CRD's
``status`` shape.
"""

from __future__ import annotations

import os
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
        """Delete the application; return False if it did not exist."""
        ...

    def read_driver_log(self, name: str, namespace: str, tail_lines: int) -> list[str] | None:
        """The driver's last log lines, or None where there is no driver pod to read."""
        ...

    def driver_pending_reason(self, name: str, namespace: str) -> str | None:
        """Why the driver has not started (e.g. ``Unschedulable: … Insufficient nvidia.com/gpu``)."""
        ...

    def check_access(self, namespace: str | None) -> str:
        """Check that applications can be submitted to ``namespace`` (the connection resolves and,
        on a cluster, the API answers and lets us list them); return what was reached.

        Raise :class:`SparkApplicationApiError` (or the connection lookup's error) when not.
        """
        ...


BACKENDS = ("local", "kubernetes")
#: Environment variable naming the backend of tasks that name none (default ``local``).
BACKEND_ENV = "SPARKAPP_BACKEND"


def resolve_backend(backend: str | None) -> str:
    """The task's backend, else ``$SPARKAPP_BACKEND``, else ``local``: read when the task runs, so
    one DAG file serves the embedded default and a cluster."""
    resolved = backend or os.environ.get(BACKEND_ENV) or "local"
    if resolved not in BACKENDS:
        raise ValueError(f"unknown SparkApplication backend {resolved!r}; expected one of {BACKENDS}")
    return resolved


def get_client(backend: str, *, spark_conn_id: str = "spark_default",
               kubernetes_conn_id: str = "kubernetes_default") -> SparkApplicationClient:
    """Return the client of ``backend``.

    :param backend: where applications run; one of :data:`BACKENDS`.
    :param spark_conn_id: Airflow connection whose host is the Spark master (local backend).
    :param kubernetes_conn_id: Airflow connection to the cluster (Kubernetes backend).
    """
    if backend == "local":
        from sparkapp.local_backend import LocalSparkApplicationClient

        return LocalSparkApplicationClient(spark_conn_id=spark_conn_id)
    if backend == "kubernetes":
        from sparkapp.hooks.spark_application import SparkApplicationHook

        return SparkApplicationHook(kubernetes_conn_id=kubernetes_conn_id)
    raise ValueError(f"unknown SparkApplication backend {backend!r}; expected one of {BACKENDS}")
