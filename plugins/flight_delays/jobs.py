"""The pipeline's Spark jobs and their resource profiles: what each SparkApplication runs, with what.

A :class:`~sparkapp.application.SparkJob` is a PySpark program under ``spark_jobs/`` with its
image, Spark settings and driver/executor resources (its ``cpu`` profile). Training also has a
``gpu`` profile, chosen by the DAG's ``device`` param (``cuda``): XGBoost on GPU executors with the
RAPIDS Accelerator (NVIDIA cuDF plugin for Apache Spark). ``docs/GPU.md`` explains every field of it.

Only definitions live here (no I/O, no heavy imports): the DAG file imports this module at parse time.
"""

from __future__ import annotations

from sparkapp.application import (
    BatchScheduler,
    Gpu,
    Placement,
    PodResources,
    ResourceProfile,
    SparkJob,
    Toleration,
)

SPARK_IMAGE = "ghcr.io/flight-delays/spark-jobs:0.1.0"
# The CPU image carries xgboost-cpu and torch's CPU build, which have no GPU code; the GPU image is the
# same project with the CUDA builds (the `xgboost` wheel, PyPI's torch). Both are built outside this
# repository.
SPARK_GPU_IMAGE = "ghcr.io/flight-delays/spark-jobs-gpu:0.1.0"
# Days of ~1,000 flights: 200 shuffle partitions would only cost time. INFO logs drown the task log.
SPARK_CONF = {"spark.sql.shuffle.partitions": "8", "spark.log.level": "WARN"}

CPU_RESOURCES = {
    "driver": PodResources(cores=1, memory="1g"),
    "executor": PodResources(cores=1, memory="2g"),
    "executor_instances": 2,
}

# --- The RAPIDS Accelerator (rapids-4-spark) -----------------------------------------------------
# NO released rapids-4-spark supports Spark 4.3. The newest release, 26.10.0, lists Apache Spark
# 3.3.0-4.2.0 (Scala 2.13 builds: 3.5.0-3.5.9, 4.0.0-4.0.4, 4.1.1-4.1.3 and 4.2.0) on its download
# page (NVIDIA/cudf-spark docs/download.md). It is the closest correct choice for our Spark 4.3.0:
# the newest Spark line it knows, in the Scala 2.13 build that Spark 4 requires. By itself it would
# refuse to start on 4.3.0 ("Could not find Spark Shim Loader for 4.3.0"), so the GPU profile forces
# its Spark 4.2.0 shim (RAPIDS_SHIM_PROVIDER), which the plugin logs as "an untested configuration".
# When a release lists Spark 4.3, pin it here and delete the override (tests pin both).
RAPIDS_VERSION = "26.10.0"
#: Scala line of the job image's Spark: Spark 4 is built for Scala 2.13 only (pyspark's jars say so).
SCALA_BINARY_VERSION = "2.13"
RAPIDS_JAR_NAME = f"rapids-4-spark_{SCALA_BINARY_VERSION}-{RAPIDS_VERSION}.jar"
#: The x86_64 CUDA 12 build (NVIDIA driver R525+); the `cuda13` classifier needs R580+. The GPU
#: variant of Dockerfile.spark downloads it from here when the image is built.
RAPIDS_JAR_URL = (f"https://repo1.maven.org/maven2/com/nvidia/rapids-4-spark_{SCALA_BINARY_VERSION}/"
                  f"{RAPIDS_VERSION}/{RAPIDS_JAR_NAME}")
#: The jar inside the GPU image: baked in, because driver pods under the namespaces' default-deny
#: NetworkPolicy cannot reach Maven Central (and a download at every start is slow and fragile).
RAPIDS_JAR = f"local:///opt/spark/rapids/{RAPIDS_JAR_NAME}"
#: The shim of the newest Spark that RAPIDS_VERSION supports, forced because it has none for 4.3.
RAPIDS_SHIM_PROVIDER = "com.nvidia.spark.rapids.shims.spark420.SparkShimServiceProvider"

# Ships with Spark (examples/src/main/scripts): lists the GPUs an executor sees, for Spark's
# resource scheduling. The GPU image must keep Spark's examples/ folder.
GPU_DISCOVERY_SCRIPT = "/opt/spark/examples/src/main/scripts/getGpusResources.sh"
#: Node label of GPU nodes, set by NVIDIA's GPU Feature Discovery (part of the GPU Operator).
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
#: GPU node pools are commonly tainted `nvidia.com/gpu:NoSchedule` so that only GPU work lands there.
GPU_TOLERATIONS = (Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),)
#: PriorityClass of training pods: a cluster object the platform team creates (docs/GPU.md).
TRAINING_PRIORITY_CLASS = "ml-training"
#: Gang scheduling of the GPU profile: None (the default scheduler) until the cluster runs Volcano or
#: YuniKorn and the operator has batch scheduling enabled; then e.g.
#: BatchScheduler(name="volcano", queue="gpu-training", priority_class_name=TRAINING_PRIORITY_CLASS).
GPU_BATCH_SCHEDULER: BatchScheduler | None = None

# Training with device=cuda: two executors with one GPU each, the RAPIDS Accelerator on, the driver
# anywhere (it needs no GPU) but with the same priority, so that it is not preempted under its executors.
GPU_TRAINING = ResourceProfile(
    image=SPARK_GPU_IMAGE,
    driver=PodResources(cores=1, memory="2g",
                        placement=Placement(priority_class_name=TRAINING_PRIORITY_CLASS)),
    executor=PodResources(
        cores=4, memory="8g", gpu=Gpu(name="nvidia.com/gpu", quantity=1),
        # Replaces Spark's default (40% of the heap for Python jobs on Kubernetes, 3.2g here) with
        # that plus the RAPIDS pinned host memory pool (2g), which lives outside the heap.
        memory_overhead="6g",
        placement=Placement(node_selector=GPU_NODE_SELECTOR, tolerations=GPU_TOLERATIONS,
                            priority_class_name=TRAINING_PRIORITY_CLASS),
    ),
    executor_instances=2,
    jars=(RAPIDS_JAR,),
    batch_scheduler=GPU_BATCH_SCHEDULER,
    spark_conf={
        "spark.plugins": "com.nvidia.spark.SQLPlugin",
        "spark.rapids.shims-provider-override": RAPIDS_SHIM_PROVIDER,
        "spark.executor.resource.gpu.amount": "1",
        "spark.executor.resource.gpu.vendor": "nvidia.com",
        "spark.executor.resource.gpu.discoveryScript": GPU_DISCOVERY_SCRIPT,
        # One task per executor, holding its GPU and all its cores: an XGBoost worker per GPU.
        "spark.task.resource.gpu.amount": "1",
        "spark.task.cpus": "4",
        "spark.rapids.sql.concurrentGpuTasks": "1",
        "spark.rapids.memory.pinnedPool.size": "2g",
    },
)

VALIDATE_JOB = SparkJob(name="validate", main_application_file="spark_jobs/validate.py",
                        image=SPARK_IMAGE, spark_conf=SPARK_CONF, **CPU_RESOURCES)
FEATURES_JOB = SparkJob(name="features", main_application_file="spark_jobs/features.py",
                        image=SPARK_IMAGE, spark_conf=SPARK_CONF, **CPU_RESOURCES)
TRAIN_JOB = SparkJob(name="train", main_application_file="spark_jobs/train.py",
                     image=SPARK_IMAGE, spark_conf=SPARK_CONF, profiles={"gpu": GPU_TRAINING},
                     **CPU_RESOURCES)
