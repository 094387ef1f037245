from __future__ import annotations

import importlib.metadata
from datetime import datetime, timezone

import pytest

from sparkapp.application import (
    SPARK_VERSION,
    SPEC_HASH_ANNOTATION,
    Gpu,
    PodResources,
    SparkApplicationSpecError,
    SparkJob,
    application_name,
    label_value,
    render_manifest,
    spec_hash,
)

JOB = SparkJob(
    name="features",
    main_application_file="spark_jobs/features.py",
    image="registry.example/spark-jobs:1.0",
    driver=PodResources(cores=1, memory="1g", core_request="500m"),
    executor=PodResources(cores=2, memory="3g", core_limit="2", gpu=Gpu(name="nvidia.com/gpu", quantity=1)),
    executor_instances=4,
    spark_conf={"spark.sql.shuffle.partitions": "8"},
    py_files=("deps/lib.zip",),
)
START = datetime(2013, 6, 30, tzinfo=timezone.utc)


def test_render_manifest_is_the_full_spark_application():
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev",
                               arguments=["--day", "2013-06-30", 7], labels={"team": "ml"},
                               annotations={"run": "manual__1"})
    assert manifest["metadata"] == {
        "name": "features-20130630-abcdef12", "namespace": "ml-dev", "labels": {"team": "ml"},
        "annotations": {"run": "manual__1", SPEC_HASH_ANNOTATION: spec_hash(manifest["spec"])},
    }
    assert manifest == {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": manifest["metadata"],
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": "registry.example/spark-jobs:1.0",
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": "local:///opt/spark/work-dir/spark_jobs/features.py",
            "arguments": ["--day", "2013-06-30", "7"],
            "sparkVersion": "4.3.0",
            "sparkConf": {"spark.sql.shuffle.partitions": "8"},
            "deps": {"pyFiles": ["local:///opt/spark/work-dir/deps/lib.zip"]},
            "restartPolicy": {
                "type": "OnFailure",
                "onFailureRetries": 2,
                "onFailureRetryInterval": 30,
                "onSubmissionFailureRetries": 3,
                "onSubmissionFailureRetryInterval": 60,
            },
            "driver": {"cores": 1, "memory": "1g", "coreRequest": "500m", "serviceAccount": "spark",
                       "labels": {"team": "ml"}},
            "executor": {"cores": 2, "memory": "3g", "coreLimit": "2",
                         "gpu": {"name": "nvidia.com/gpu", "quantity": 1}, "instances": 4,
                         "labels": {"team": "ml"}},
        },
    }


def test_spark_version_matches_the_pinned_pyspark():
    assert importlib.metadata.version("pyspark") == SPARK_VERSION


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (SparkJob(name="Features", main_application_file="x.py", image="i"), "job name 'Features'"),
        (SparkJob(name="1features", main_application_file="x.py", image="i"), "job name '1features'"),
        (SparkJob(name="f" * 46, main_application_file="x.py", image="i"), "at most 45 characters"),
        (SparkJob(name="f", main_application_file="x.py", image="i", driver=PodResources(cores=0)),
         "driver.cores must be an integer >= 1, got 0"),
        (SparkJob(name="f", main_application_file="x.py", image="i", executor=PodResources(memory="2GB")),
         "executor.memory must be a positive size with a unit k, m, g or t (e.g. '2g'), got '2GB'"),
        (SparkJob(name="f", main_application_file="x.py", image="i", executor_instances=0),
         "executor_instances must be >= 1, got 0"),
        (SparkJob(name="f", main_application_file="x.py", image="i", spark_conf={"spark.x": 1}),
         "sparkConf values must be strings, got {'spark.x': 1}"),
        (SparkJob(name="f", main_application_file="x.py", image="i", driver=PodResources(cores=0.5)),
         "driver.cores must be an integer >= 1, got 0.5 (fractional CPU goes into driver.core_request"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  executor=PodResources(core_request="half")),
         "executor.core_request must be a CPU quantity such as '500m' or '1.5', got 'half'"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  executor=PodResources(gpu=Gpu(name="", quantity=1))),
         "executor.gpu.name must be a resource name such as 'nvidia.com/gpu', got ''"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  executor=PodResources(gpu=Gpu(name="nvidia.com/gpu", quantity=0))),
         "executor.gpu.quantity must be an integer >= 1, got 0"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  spark_conf={"spark.kubernetes.container.image": "other:1"}),
         "sparkConf key 'spark.kubernetes.container.image' is rejected by the Spark Operator: "
         "use SparkJob.image (spec.image)"),
        (SparkJob(name="f", main_application_file="x.py", image="i", spark_conf={"spark.master": "local"}),
         "sparkConf key 'spark.master' is rejected by the Spark Operator: the operator sets the master"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  spark_conf={"spark.kubernetes.namespace": "other"}),
         "sparkConf key 'spark.kubernetes.namespace' is rejected"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  spark_conf={"spark.kubernetes.authenticate.driver.serviceAccountName": "admin"}),
         "sparkConf key 'spark.kubernetes.authenticate.driver.serviceAccountName' is rejected"),
    ],
)
def test_bad_job_fails_at_render_time_naming_the_field(job, message):
    with pytest.raises(SparkApplicationSpecError) as raised:
        render_manifest(job, name="f-20130630-abcdef12", namespace="ml-dev")
    assert message in str(raised.value)


@pytest.mark.parametrize("name", ["Features-1", "-features", "features-", "f" * 64, "features_1"])
def test_bad_application_name_is_refused(name):
    with pytest.raises(SparkApplicationSpecError, match=r"metadata\.name"):
        render_manifest(JOB, name=name, namespace="ml-dev")


def test_application_name_is_deterministic_per_task_interval_and_map_index():
    name = application_name("features", dag_id="d", task_id="t", data_interval_start=START)
    assert name == application_name("features", dag_id="d", task_id="t", data_interval_start=START)
    assert name.startswith("features-20130630-") and len(name) == len("features-20130630-") + 8
    others = {
        application_name("features", dag_id="d2", task_id="t", data_interval_start=START),
        application_name("features", dag_id="d", task_id="t2", data_interval_start=START),
        application_name("features", dag_id="d", task_id="t", data_interval_start=START, map_index=0),
        application_name("features", dag_id="d", task_id="t",
                         data_interval_start=datetime(2013, 6, 30, 1, tzinfo=timezone.utc)),
    }
    assert name not in others and len(others) == 4


def test_longest_job_name_gives_a_valid_application_name():
    job = SparkJob(name="f" * 45, main_application_file="x.py", image="i")
    name = application_name(job.name, dag_id="d", task_id="t", data_interval_start=START)
    assert len(name) == 63
    assert render_manifest(job, name=name, namespace="ml-dev")["metadata"]["name"] == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("flight_delay_retraining", "flight_delay_retraining"),
        ("manual__2013-07-01T00:00:00+00:00", "manual__2013-07-01T00_00_00_00_00"),
        ("_x" + "a" * 70, "x" + "a" * 62),
    ],
)
def test_label_value_is_kubernetes_safe(value, expected):
    assert label_value(value) == expected


def test_spec_hash_ignores_key_order_and_sees_every_change():
    spec = render_manifest(JOB, name="f-20130630-abcdef12", namespace="ml-dev")["spec"]
    reordered = dict(reversed(list(spec.items())))
    assert spec_hash(reordered) == spec_hash(spec)
    changed = render_manifest(JOB, name="f-20130630-abcdef12", namespace="ml-dev", arguments=["x"])["spec"]
    assert spec_hash(changed) != spec_hash(spec)


def test_profiles_replace_resources_and_add_spark_settings():
    from sparkapp.application import ResourceProfile

    gpu = ResourceProfile(driver=PodResources(cores=1, memory="2g"),
                          executor=PodResources(cores=4, memory="8g", gpu=Gpu(name="nvidia.com/gpu")),
                          executor_instances=3, spark_conf={"spark.task.resource.gpu.amount": "1"})
    job = SparkJob(name="train", main_application_file="x.py", image="i", spark_conf={"a": "1"},
                   profiles={"gpu": gpu})
    assert job.profile_names == ["cpu", "gpu"]
    assert job.with_profile("cpu") is job
    on_gpu = job.with_profile("gpu")
    assert (on_gpu.executor, on_gpu.executor_instances, dict(on_gpu.spark_conf)) == (
        gpu.executor, 3, {"a": "1", "spark.task.resource.gpu.amount": "1"})
    expected = r"job 'train' has no profile 'tpu'; its profiles are \['cpu', 'gpu'\]"
    with pytest.raises(SparkApplicationSpecError, match=expected):
        job.with_profile("tpu")
