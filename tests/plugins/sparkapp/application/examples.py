"""What several application tests build jobs with and compare manifests to."""

from __future__ import annotations

from sparkapp.application import Gpu, PodResources, SparkJob

#: A job with every commonly used field set: fractional CPU, a CPU limit, a GPU, py_files.
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

#: Pod Security Standard "restricted", as Kubernetes' docs list it, for the spark user (uid 185).
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 185, "runAsGroup": 185, "fsGroup": 185,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True, "runAsUser": 185, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED = {"podSecurityContext": RESTRICTED_POD, "securityContext": RESTRICTED_CONTAINER}


def job_with(**fields) -> SparkJob:
    return SparkJob(**{"name": "f", "main_application_file": "x.py", "image": "i", **fields})
