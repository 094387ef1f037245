"""The seam between the operators and where SparkApplications run.

The submit operator and the sensor talk to a :class:`SparkApplicationClient` and nothing else, so the
same DAG runs on one machine (:mod:`sparkapp.local_backend`) and, through the Kubernetes API, on a
cluster with the Spark Operator. Objects in and out are SparkApplication manifests with the CRD's
``status`` shape.
"""

from __future__ import annotations

from typing import Protocol


class ApplicationNotFound(LookupError):
    """No SparkApplication of that name exists in that namespace."""


class SparkApplicationClient(Protocol):
    """Creates SparkApplications and reads them back."""

    def create_application(self, manifest: dict) -> dict:
        """Create the application described by ``manifest`` and return the stored object."""
        ...

    def get_application(self, name: str, namespace: str) -> dict:
        """Return the application with its current ``status``; raise :class:`ApplicationNotFound`."""
        ...


BACKENDS = ("local",)


def get_client(backend: str, *, spark_conn_id: str = "spark_default") -> SparkApplicationClient:
    """Return the client of ``backend``.

    :param backend: where applications run; one of :data:`BACKENDS`.
    :param spark_conn_id: Airflow connection whose host is the Spark master (local backend).
    """
    if backend == "local":
        from sparkapp.local_backend import LocalSparkApplicationClient

        return LocalSparkApplicationClient(spark_conn_id=spark_conn_id)
    raise ValueError(f"unknown SparkApplication backend {backend!r}; expected one of {BACKENDS}")
