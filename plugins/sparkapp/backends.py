"""Choosing where SparkApplications run: the local backend or the Kubernetes one.

Apart from :mod:`sparkapp.client` so that the backends, which import the client's errors, are never
imported by the module they import (no cycle). Each backend is imported only when chosen: the
Kubernetes client is slow to import and one machine does not need it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkapp.client import SparkApplicationClient

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
               kubernetes_conn_id: str = "kubernetes_default",
               object_store_conn_id: str = "aws_default") -> SparkApplicationClient:
    """Return the client of ``backend``.

    :param backend: where applications run; one of :data:`BACKENDS`.
    :param spark_conn_id: Airflow connection whose host is the Spark master (local backend).
    :param kubernetes_conn_id: Airflow connection to the cluster (Kubernetes backend).
    :param object_store_conn_id: Airflow connection of the object store a job reads through S3A (local
        backend; on a cluster the pods' Secret holds it).
    """
    if backend == "local":
        from sparkapp.hooks.local import LocalSparkApplicationClient

        return LocalSparkApplicationClient(spark_conn_id=spark_conn_id,
                                           object_store_conn_id=object_store_conn_id)
    if backend == "kubernetes":
        from sparkapp.hooks.kubernetes import SparkApplicationHook

        return SparkApplicationHook(kubernetes_conn_id=kubernetes_conn_id)
    raise ValueError(f"unknown SparkApplication backend {backend!r}; expected one of {BACKENDS}")
