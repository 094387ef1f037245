"""The submit operator's manifest: named, labelled and annotated for the task's run.

OpenLineage: with Airflow's OpenLineage configured to, each SparkApplication reports lineage as a
child of the task that submitted it, to the same backend; without it, the manifest has no trace of it.

Submitting, adopting and replacing applications on a cluster: ``tests/scenarios/test_kubernetes_backend.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from sparkapp.application import SPEC_HASH_ANNOTATION, PodResources, SparkJob
from sparkapp.operators.spark_application import SparkApplicationOperator

JOB = SparkJob(name="features", main_application_file="spark_jobs/features.py", image="spark-jobs:1",
               driver=PodResources(cores=1, memory="1g"), executor=PodResources(cores=1, memory="2g"),
               spark_conf={"spark.sql.shuffle.partitions": "8"})
START = datetime(2013, 6, 30, tzinfo=timezone.utc)


def clear_openlineage_caches() -> None:
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins import listener

    for name in dir(conf):
        cached = getattr(getattr(conf, name), "cache_clear", None)
        if cached:
            cached()
    listener._openlineage_listener = None


@pytest.fixture
def openlineage(monkeypatch):
    """Airflow's OpenLineage as deploy/helm/airflow/values.yaml configures it."""
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       '{"type": "http", "url": "http://marquez.lineage:5000", "endpoint": "api/v1/lineage"}')
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "flight-delays-prod")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__SPARK_INJECT_PARENT_JOB_INFO", "True")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__SPARK_INJECT_TRANSPORT_INFO", "True")
    clear_openlineage_caches()
    yield
    monkeypatch.undo()
    clear_openlineage_caches()


def context(try_number: int = 1) -> dict:
    dag_run = SimpleNamespace(logical_date=START, run_after=START, conf={}, clear_number=0,
                              dag_id="flight_delay_retraining", run_id="scheduled__2013-06-30T00:00:00+00:00")
    ti = SimpleNamespace(dag_id="flight_delay_retraining", task_id="submit_features", map_index=-1,
                         try_number=try_number, dag_run=dag_run, logical_date=START)
    ti.get_template_context = lambda: {"dag_run": dag_run}
    return {"ti": ti, "data_interval_start": START, "run_id": dag_run.run_id, "dag_run": dag_run}


def manifest(ctx: dict) -> dict:
    operator = SparkApplicationOperator(task_id="submit_features", job=JOB, arguments=["--day", "2013-06-30"])
    return operator.build_manifest(ctx, "flight-delays-prod")


def test_without_openlineage_the_manifest_has_only_the_jobs_conf():
    clear_openlineage_caches()
    assert manifest(context())["spec"]["sparkConf"] == {"spark.sql.shuffle.partitions": "8"}


def test_configured_openlineage_reaches_the_spark_listener_as_a_child_of_the_task(openlineage):
    conf = manifest(context())["spec"]["sparkConf"]
    assert conf["spark.extraListeners"] == "io.openlineage.spark.agent.OpenLineageSparkListener"
    assert (conf["spark.openlineage.transport.type"], conf["spark.openlineage.transport.url"],
            conf["spark.openlineage.transport.endpoint"]) == ("http", "http://marquez.lineage:5000",
                                                              "api/v1/lineage")
    assert (conf["spark.openlineage.parentJobNamespace"], conf["spark.openlineage.parentJobName"],
            conf["spark.openlineage.rootParentJobName"]) == (
        "flight-delays-prod", "flight_delay_retraining.submit_features", "flight_delay_retraining")
    assert conf["spark.sql.shuffle.partitions"] == "8"


def test_a_retry_reports_another_lineage_run_but_keeps_the_spec_hash(openlineage):
    first, retry = manifest(context(try_number=1)), manifest(context(try_number=2))
    parent = "spark.openlineage.parentRunId"
    assert first["spec"]["sparkConf"][parent] != retry["spec"]["sparkConf"][parent]
    # so a retry after a worker crash still adopts the application of the first try
    assert (first["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
            == retry["metadata"]["annotations"][SPEC_HASH_ANNOTATION])


def test_the_manifest_is_named_labelled_and_annotated_for_the_tasks_run():
    clear_openlineage_caches()
    metadata = manifest(context())["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("features-20130630-826f99ef", "flight-delays-prod")
    assert metadata["labels"] == {
        "app.kubernetes.io/name": "features", "app.kubernetes.io/managed-by": "airflow",
        "airflow.apache.org/dag-id": "flight_delay_retraining",
        "airflow.apache.org/task-id": "submit_features",
        "airflow.apache.org/run-id": "scheduled__2013-06-30T00_00_00_00_00",
        "airflow.apache.org/data-interval-start": "2013-06-30"}
    assert metadata["annotations"] == {
        "airflow.apache.org/dag-id": "flight_delay_retraining",
        "airflow.apache.org/task-id": "submit_features",
        "airflow.apache.org/run-id": "scheduled__2013-06-30T00:00:00+00:00",
        "airflow.apache.org/map-index": "-1",
        SPEC_HASH_ANNOTATION: "fd872870cafcc964"}  # pragma: allowlist secret (a spec hash, not a key)
