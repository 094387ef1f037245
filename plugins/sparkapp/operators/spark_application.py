"""Operator that submits a SparkApplication rendered from a :class:`~sparkapp.application.SparkJob`."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator

from sparkapp.application import application_name, label_value, render_manifest
from sparkapp.client import get_client

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from sparkapp.application import SparkJob
    from sparkapp.client import SparkApplicationClient


class SparkApplicationOperator(BaseOperator):
    """Submit one run of ``job`` as a SparkApplication and push its name to XCom.

    The name is deterministic for (dag, task, data interval, map index), so every try of the task
    targets the same application. Waiting is the job of
    :class:`~sparkapp.sensors.spark_application.SparkApplicationSensor`.

    :param job: what runs.
    :param arguments: the program's arguments (templated).
    :param namespace: namespace of the application (templated).
    :param backend: where the application runs; see :data:`sparkapp.client.BACKENDS`.
    :param spark_conn_id: connection of the Spark master, for the local backend.
    """

    template_fields: Sequence[str] = ("arguments", "namespace")
    ui_color = "#f7c873"

    def __init__(self, *, job: SparkJob, arguments: Sequence[str] = (), namespace: str = "default",
                 backend: str = "local", spark_conn_id: str = "spark_default", **kwargs) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.arguments = arguments
        self.namespace = namespace
        self.backend = backend
        self.spark_conn_id = spark_conn_id

    @cached_property
    def client(self) -> SparkApplicationClient:
        return get_client(self.backend, spark_conn_id=self.spark_conn_id)

    def build_manifest(self, context: Context) -> dict:
        """Render this run's SparkApplication (also used to preview what would be submitted)."""
        ti = context["ti"]
        interval_start = context["data_interval_start"]
        name = application_name(self.job.name, dag_id=ti.dag_id, task_id=ti.task_id,
                                data_interval_start=interval_start, map_index=ti.map_index)
        labels = {
            "app.kubernetes.io/name": self.job.name,
            "app.kubernetes.io/managed-by": "airflow",
            "airflow.apache.org/dag-id": label_value(ti.dag_id),
            "airflow.apache.org/task-id": label_value(ti.task_id),
            "airflow.apache.org/data-interval-start": f"{interval_start:%Y-%m-%d}",
        }
        return render_manifest(self.job, name=name, namespace=self.namespace,
                               arguments=self.arguments, labels=labels)

    def execute(self, context: Context) -> str:
        manifest = self.build_manifest(context)
        name = manifest["metadata"]["name"]
        self.log.info("Submitting SparkApplication %s in namespace %s (%s backend)",
                      name, self.namespace, self.backend)
        self.client.create_application(manifest)
        return name
