"""Operator that submits a SparkApplication rendered from a :class:`~sparkapp.application.SparkJob`."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator

from sparkapp import states
from sparkapp.application import (
    DEFAULT_PROFILE,
    SPEC_HASH_ANNOTATION,
    PodEnvironment,
    application_name,
    label_value,
    render_manifest,
)
from sparkapp.backends import get_client, resolve_backend
from sparkapp.client import ApplicationAlreadyExists, ApplicationNotFound

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from sparkapp.application import SparkJob
    from sparkapp.client import SparkApplicationClient

DAG_ID_ANNOTATION = "airflow.apache.org/dag-id"
TASK_ID_ANNOTATION = "airflow.apache.org/task-id"
MAP_INDEX_ANNOTATION = "airflow.apache.org/map-index"
RUN_ID_ANNOTATION = "airflow.apache.org/run-id"
#: The annotations that say which task created an application (with the run id, which run).
OWNER_ANNOTATIONS = (DAG_ID_ANNOTATION, TASK_ID_ANNOTATION, MAP_INDEX_ANNOTATION)
#: How long a deleted application may take to go: on a cluster its driver pod, UI service and
#: ConfigMaps are removed first (foreground deletion), which takes the garbage collector seconds.
DELETE_TIMEOUT_SECONDS = 120
#: The OpenLineage Spark listener (its jar is in the job image's /opt/spark/jars).
OPENLINEAGE_LISTENER = "io.openlineage.spark.agent.OpenLineageSparkListener"


def lineage_spark_conf(context: Context) -> dict[str, str]:
    """The sparkConf that makes the application report lineage as a child of this task, as the
    OpenLineage provider does for Spark operators: on when Airflow's OpenLineage is configured and
    ``[openlineage] spark_inject_parent_job_info`` / ``spark_inject_transport_info`` are set.
    """
    from airflow.providers.openlineage import conf as lineage
    from airflow.providers.openlineage.utils.spark import (
        inject_parent_job_information_into_spark_properties,
        inject_transport_information_into_spark_properties,
    )

    if lineage.is_disabled():
        return {}
    properties: dict[str, str] = {}
    if lineage.spark_inject_parent_job_info():
        properties = inject_parent_job_information_into_spark_properties(properties, context)
    if lineage.spark_inject_transport_info():
        properties = inject_transport_information_into_spark_properties(properties, context)
    if properties:
        properties["spark.extraListeners"] = OPENLINEAGE_LISTENER
    return {key: str(value) for key, value in properties.items()}


class SparkApplicationConflict(RuntimeError):
    """An application of the same name is doing other work and must not be touched."""


class SparkApplicationOperator(BaseOperator):
    """Submit one run of ``job`` as a SparkApplication and push its name to XCom.

    The name is deterministic for (dag, task, data interval, map index), so every try of the task
    targets the same application. When it already exists (HTTP 409), the operator adopts it if it
    is the same run's work with the same spec and still going (a retry after a worker crash must
    not start a second application); waits for it to go if it is being deleted, then creates it;
    replaces it if this task created it and it has finished, failed or completed (a failed try, a
    cleared task that must really run again, an earlier run of the same interval), deleting it in
    the foreground so that its driver pod and ConfigMaps are gone before the new one is created;
    and refuses to touch it if it is still going for another run or with another spec, or if this
    task did not create it. When Airflow's
    OpenLineage is configured to (``spark_inject_*``), the application reports lineage as a child of
    the task (:func:`lineage_spark_conf`). Waiting is the job of
    :class:`~sparkapp.sensors.spark_application.SparkApplicationSensor`.

    :param job: what runs.
    :param arguments: the program's arguments (templated).
    :param namespace: namespace of the application (templated); None takes the connection's.
    :param profile: the job's resource profile (templated), e.g. ``cpu`` or ``gpu``.
    :param backend: where the application runs, one of :data:`sparkapp.backends.BACKENDS`; None reads
        ``$SPARKAPP_BACKEND`` when the task runs (default ``local``).
    :param spark_conn_id: connection of the Spark master, for the local backend.
    :param kubernetes_conn_id: connection to the cluster, for the Kubernetes backend.
    :param object_store_conn_id: connection of the object store a job on ``s3://`` reads, for the
        local backend (templated; on a cluster the pods' Secret holds the keys).
    """

    template_fields: Sequence[str] = ("arguments", "namespace", "profile", "object_store_conn_id")
    ui_color = "#f7c873"

    def __init__(self, *, job: SparkJob, arguments: Sequence[str] = (), namespace: str | None = None,
                 profile: str = DEFAULT_PROFILE, backend: str | None = None,
                 spark_conn_id: str = "spark_default", kubernetes_conn_id: str = "kubernetes_default",
                 object_store_conn_id: str = "aws_default", **kwargs) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.arguments = arguments
        self.namespace = namespace
        self.profile = profile
        self.backend = backend
        self.spark_conn_id = spark_conn_id
        self.kubernetes_conn_id = kubernetes_conn_id
        self.object_store_conn_id = object_store_conn_id

    @cached_property
    def client(self) -> SparkApplicationClient:
        return get_client(resolve_backend(self.backend), spark_conn_id=self.spark_conn_id,
                          kubernetes_conn_id=self.kubernetes_conn_id,
                          object_store_conn_id=self.object_store_conn_id)

    def build_manifest(self, context: Context, namespace: str | None = None) -> dict:
        """Render this run's SparkApplication (also used to preview what would be submitted).

        :param namespace: the resolved namespace; default: the task's, else ``default``.
        """
        ti = context["ti"]
        interval_start = context["data_interval_start"]
        run_id = context.get("run_id", "")
        name = application_name(self.job.name, dag_id=ti.dag_id, task_id=ti.task_id,
                                data_interval_start=interval_start, map_index=ti.map_index)
        labels = {
            "app.kubernetes.io/name": self.job.name,
            "app.kubernetes.io/managed-by": "airflow",
            "airflow.apache.org/dag-id": label_value(ti.dag_id),
            "airflow.apache.org/task-id": label_value(ti.task_id),
            "airflow.apache.org/run-id": label_value(run_id),
            "airflow.apache.org/data-interval-start": f"{interval_start:%Y-%m-%d}",
        }
        annotations = {
            DAG_ID_ANNOTATION: ti.dag_id,
            TASK_ID_ANNOTATION: ti.task_id,
            RUN_ID_ANNOTATION: run_id,
            MAP_INDEX_ANNOTATION: str(ti.map_index),
        }
        job = self.job.with_profile(self.profile)
        lineage = lineage_spark_conf(context)
        if lineage:
            job = replace(job, spark_conf={**job.spark_conf, **lineage})
        return render_manifest(job, name=name,
                               namespace=namespace or self.namespace or "default",
                               arguments=self.arguments, labels=labels, annotations=annotations,
                               pod_environment=PodEnvironment.from_environ(os.environ))

    def execute(self, context: Context) -> str:
        manifest = self.build_manifest(context, self.client.resolve_namespace(self.namespace))
        meta = manifest["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        self.log.info("Submitting SparkApplication %s in namespace %s (%s backend)", name, namespace,
                      resolve_backend(self.backend))
        try:
            self.client.create_application(manifest)
        except ApplicationAlreadyExists:
            self._resolve_existing(manifest)
        return name

    def _resolve_existing(self, manifest: dict) -> None:
        meta = manifest["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        try:
            existing = self.client.get_application(name, namespace)
        except ApplicationNotFound:  # deleted between our create and our read: create it now
            self.client.create_application(manifest)
            return
        theirs = existing["metadata"].get("annotations", {})
        state = states.application_state(existing)
        if states.is_being_deleted(existing):
            self.log.info("SparkApplication %s (%s) is being deleted; creating it again once it is gone",
                          name, state or "new")
            self._wait_until_gone(name, namespace)
            self.client.create_application(manifest)
            return
        same_work = (theirs.get(RUN_ID_ANNOTATION) == meta["annotations"][RUN_ID_ANNOTATION]
                     and theirs.get(SPEC_HASH_ANNOTATION) == meta["annotations"][SPEC_HASH_ANNOTATION])
        if same_work and state not in states.TERMINAL_STATES:
            self.log.info("Adopting SparkApplication %s (%s) created by an earlier try of this run",
                          name, state or "new")
            return
        ours = all(theirs.get(key) == meta["annotations"][key] for key in OWNER_ANNOTATIONS)
        if state in states.TERMINAL_STATES and ours:
            self.log.info("Replacing SparkApplication %s, a finished leftover (%s) of run %s",
                          name, state, theirs.get(RUN_ID_ANNOTATION, "unknown"))
            self.client.delete_application(name, namespace)
            self._wait_until_gone(name, namespace)
            self.client.create_application(manifest)
            return
        if not ours:
            creator = (f"task {theirs[TASK_ID_ANNOTATION]} of DAG {theirs.get(DAG_ID_ANNOTATION, '?')}"
                       if TASK_ID_ANNOTATION in theirs else "not Airflow")
            raise SparkApplicationConflict(
                f"SparkApplication {name} in namespace {namespace} already exists ({state or 'new'}) and "
                f"was not created by this task (its creator: {creator}); "
                f"it is left alone: delete it (kubectl delete sparkapplication {name} -n {namespace}), "
                "then retry this task"
            )
        raise SparkApplicationConflict(
            f"SparkApplication {name} in namespace {namespace} already exists and is {state or 'new'}, "
            f"created by run {theirs.get(RUN_ID_ANNOTATION, 'unknown')} with "
            f"{'the same' if same_work else 'a different'} spec; wait for it to finish or delete it "
            f"(kubectl delete sparkapplication {name} -n {namespace}), then retry this task"
        )

    def _wait_until_gone(self, name: str, namespace: str) -> None:
        # Deletion is asynchronous on a cluster: the garbage collector removes the dependents first.
        deadline = time.monotonic() + DELETE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                self.client.get_application(name, namespace)
            except ApplicationNotFound:
                return
            time.sleep(1)
        raise SparkApplicationConflict(
            f"SparkApplication {name} in namespace {namespace} was deleted but is still there after "
            f"{DELETE_TIMEOUT_SECONDS} s (its pods are still being removed, or a finalizer holds it); "
            "retry this task once it is gone"
        )
