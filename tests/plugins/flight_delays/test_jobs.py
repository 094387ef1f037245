"""The pipeline's Spark jobs: the GPU profile of training, field by field, and the RAPIDS jar's pins."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from flight_delays.jobs import (
    FEATURES_JOB,
    GPU_TRAINING,
    RAPIDS_JAR,
    RAPIDS_JAR_URL,
    RAPIDS_SHIM_PROVIDER,
    RAPIDS_VERSION,
    SCALA_BINARY_VERSION,
    SPARK_IMAGE,
    TRAIN_JOB,
    VALIDATE_JOB,
)
from sparkapp.application import SPARK_VERSION, BatchScheduler, render_manifest
from tests.plugins.sparkapp.application.examples import RESTRICTED

NAME, NAMESPACE = "train-20130630-abcdef12", "ml-prod"


def rendered_spec(job) -> dict:
    return render_manifest(job, name=NAME, namespace=NAMESPACE, arguments=["--device", "cuda"])["spec"]


def test_gpu_profile_of_training_is_exactly_the_expected_spec():
    spec = rendered_spec(TRAIN_JOB.with_profile("gpu"))
    assert spec["image"] == "ghcr.io/flight-delays/spark-jobs-gpu:0.1.0"
    assert spec["driver"] == {
        "cores": 1, "memory": "2g", "coreLimit": "1", "priorityClassName": "ml-training",
        "serviceAccount": "spark", "labels": {}, **RESTRICTED,
    }
    assert spec["executor"] == {
        "cores": 4,
        "memory": "8g",
        "coreLimit": "4",
        "gpu": {"name": "nvidia.com/gpu", "quantity": 1},
        "memoryOverhead": "6g",
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "ml-training",
        "instances": 2,
        "labels": {},
        **RESTRICTED,
    }
    assert spec["sparkConf"] == {
        "spark.sql.shuffle.partitions": "8",
        "spark.log.level": "WARN",
        "spark.plugins": "com.nvidia.spark.SQLPlugin",
        "spark.rapids.shims-provider-override":
            "com.nvidia.spark.rapids.shims.spark420.SparkShimServiceProvider",
        "spark.executor.resource.gpu.amount": "1",
        "spark.executor.resource.gpu.vendor": "nvidia.com",
        "spark.executor.resource.gpu.discoveryScript":
            "/opt/spark/examples/src/main/scripts/getGpusResources.sh",
        "spark.task.resource.gpu.amount": "1",
        "spark.task.cpus": "4",
        "spark.rapids.sql.concurrentGpuTasks": "1",
        "spark.rapids.memory.pinnedPool.size": "2g",
    }
    assert spec["deps"] == {"pyFiles": [], "jars": ["local:///opt/spark/rapids/rapids-4-spark_2.13-26.10.0.jar"]}
    # Gang scheduling is off until the cluster has Volcano or YuniKorn (docs/GPU.md).
    assert not {"batchScheduler", "batchSchedulerOptions", "nodeSelector"} & set(spec)


def test_rapids_jar_is_built_for_the_scala_and_spark_of_the_job_image():
    # pyspark ships the same Spark as the job image: its spark-core jar names Spark's Scala line.
    import pyspark

    (core,) = (Path(pyspark.__file__).parent / "jars").glob("spark-core_*.jar")
    assert core.name == f"spark-core_2.13-{SPARK_VERSION}.jar"
    (artifact, version, file_name) = re.fullmatch(
        r"https://repo1\.maven\.org/maven2/com/nvidia/([^/]+)/([^/]+)/([^/]+)", RAPIDS_JAR_URL).groups()
    assert RAPIDS_JAR == f"local:///opt/spark/rapids/{file_name}"  # where the GPU image puts it
    assert (artifact, version) == ("rapids-4-spark_2.13", "26.10.0")
    assert file_name == f"{artifact}-{version}.jar"  # the CUDA 12 x86_64 build: no classifier
    assert artifact.removeprefix("rapids-4-spark_") == core.name.split("_")[1].split("-")[0]
    assert SCALA_BINARY_VERSION == "2.13"


def test_no_rapids_release_supports_spark_4_3_so_the_newest_shim_is_forced():
    # rapids-4-spark 26.10.0 supports Spark up to 4.2.0 (NVIDIA/cudf-spark docs/download.md). If this
    # fails because SPARK_VERSION or RAPIDS_VERSION moved: check the new release's supported Spark
    # versions, and drop spark.rapids.shims-provider-override once it lists the image's Spark.
    assert (SPARK_VERSION, RAPIDS_VERSION) == ("4.3.0", "26.10.0")
    assert GPU_TRAINING.spark_conf["spark.rapids.shims-provider-override"] == RAPIDS_SHIM_PROVIDER
    assert RAPIDS_SHIM_PROVIDER == "com.nvidia.spark.rapids.shims.spark420.SparkShimServiceProvider"


@pytest.mark.parametrize(("scheduler", "expected"), [
    (BatchScheduler(name="volcano", queue="gpu-training", priority_class_name="ml-training"),
     {"batchScheduler": "volcano",
      "batchSchedulerOptions": {"queue": "gpu-training", "priorityClassName": "ml-training"}}),
    (BatchScheduler(name="yunikorn", queue="root.gpu"),
     {"batchScheduler": "yunikorn", "batchSchedulerOptions": {"queue": "root.gpu"}}),
])
def test_gang_scheduling_switched_on_renders_the_scheduler_and_its_queue(scheduler, expected):
    job = replace(TRAIN_JOB, profiles={"gpu": replace(GPU_TRAINING, batch_scheduler=scheduler)})
    spec = rendered_spec(job.with_profile("gpu"))
    assert {k: spec[k] for k in expected} == expected
    assert "batchScheduler" not in rendered_spec(job)  # the cpu profile keeps the default scheduler


@pytest.mark.parametrize("job", [VALIDATE_JOB, FEATURES_JOB, TRAIN_JOB], ids=lambda j: j.name)
def test_cpu_profiles_stay_off_gpu_nodes_and_need_no_jars(job):
    spec = rendered_spec(job)
    assert spec["image"] == SPARK_IMAGE
    assert spec["deps"] == {"pyFiles": []}
    assert spec["driver"] == {"cores": 1, "memory": "1g", "coreLimit": "1", "serviceAccount": "spark",
                              "labels": {}, **RESTRICTED}
    assert spec["executor"] == {"cores": 1, "memory": "2g", "coreLimit": "1", "instances": 2, "labels": {},
                                **RESTRICTED}
    assert spec["sparkConf"] == {"spark.sql.shuffle.partitions": "8", "spark.log.level": "WARN"}


def test_the_dag_submits_these_jobs():
    from devtools.demo import load_dag

    dag = load_dag()
    assert {t: dag.get_task(t).job for t in ("submit_validation", "submit_features", "submit_training")} == {
        "submit_validation": VALIDATE_JOB, "submit_features": FEATURES_JOB, "submit_training": TRAIN_JOB,
    }
