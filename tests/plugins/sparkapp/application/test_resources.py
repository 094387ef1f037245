"""Pod resources, GPUs, placement and gang scheduling: what each refuses, naming the field, and the CRD
fields each renders into."""

from __future__ import annotations

import pytest

from sparkapp.application import (
    BatchScheduler,
    Gpu,
    Placement,
    PodResources,
    SparkApplicationSpecError,
    SparkJob,
    Toleration,
    render_manifest,
)
from tests.plugins.sparkapp.application.examples import RESTRICTED, job_with


def executor_placed(**placement) -> SparkJob:
    return job_with(executor=PodResources(placement=Placement(**placement)))


def driver_placed(**placement) -> SparkJob:
    return job_with(driver=PodResources(placement=Placement(**placement)))


def tolerating(**toleration) -> SparkJob:
    return executor_placed(tolerations=(Toleration(**toleration),))


def gang(**scheduler) -> SparkJob:
    return job_with(batch_scheduler=BatchScheduler(**scheduler))


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (SparkJob(name="f", main_application_file="x.py", image="i", driver=PodResources(cores=0)),
         "driver.cores must be an integer >= 1, got 0"),
        (SparkJob(name="f", main_application_file="x.py", image="i", executor=PodResources(memory="2GB")),
         "executor.memory must be a positive size with a unit k, m, g or t (e.g. '2g'), got '2GB'"),
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
        (job_with(executor=PodResources(memory_overhead="6GB")),
         "executor.memory_overhead must be a positive size with a unit k, m, g or t (e.g. '2g'), got '6GB'"),
    ],
)
def test_bad_pod_resources_fail_at_render_time_naming_the_field(job, message):
    with pytest.raises(SparkApplicationSpecError) as raised:
        render_manifest(job, name="f-20130630-abcdef12", namespace="ml-dev")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (executor_placed(node_selector={"nvidia.com/gpu present": "true"}),
         "executor.placement.node_selector key must be a label key such as 'nvidia.com/gpu.present', "
         "got 'nvidia.com/gpu present'"),
        (executor_placed(node_selector={"nvidia.com/gpu.present": True}),
         "executor.placement.node_selector['nvidia.com/gpu.present'] must be a label value (a string of at "
         "most 63 letters, digits, '-', '_' or '.'), got True"),
        (executor_placed(node_selector={"pool": "-gpu"}),
         "executor.placement.node_selector['pool'] must be a label value"),
        (executor_placed(tolerations=({"key": "nvidia.com/gpu"},)),
         "executor.placement.tolerations[0] must be a Toleration, got {'key': 'nvidia.com/gpu'}"),
        (tolerating(key="nvidia.com/gpu", operator="In"),
         "executor.placement.tolerations[0].operator must be 'Equal' or 'Exists', got 'In'"),
        (tolerating(key="nvidia.com/gpu", operator="Exists", effect="NoSchedul"),
         "executor.placement.tolerations[0].effect must be one of ['NoSchedule', 'PreferNoSchedule', "
         "'NoExecute'] or None (every effect), got 'NoSchedul'"),
        (tolerating(key="nvidia.com/gpu", operator="Exists", value="present"),
         "executor.placement.tolerations[0].value must be empty with operator 'Exists', got 'present'"),
        (tolerating(key="", operator="Equal", value="x"),
         "executor.placement.tolerations[0] has no key, so its operator must be 'Exists' (tolerate every "
         "taint), got 'Equal'"),
        (tolerating(key="nvidia.com/ gpu", operator="Exists"),
         "executor.placement.tolerations[0].key must be a label key such as 'nvidia.com/gpu', "
         "got 'nvidia.com/ gpu'"),
        (tolerating(key="gpu", value="a" * 64),
         "executor.placement.tolerations[0].value must be a label value"),
        (tolerating(key="gpu", operator="Exists", effect="NoSchedule", toleration_seconds=60),
         "executor.placement.tolerations[0].toleration_seconds needs effect 'NoExecute', got effect "
         "'NoSchedule'"),
        (tolerating(key="gpu", operator="Exists", effect="NoExecute", toleration_seconds=-1),
         "executor.placement.tolerations[0].toleration_seconds must be an integer >= 0, got -1"),
        (driver_placed(priority_class_name="High-Priority"),
         "driver.placement.priority_class_name must be a PriorityClass name (lowercase letters, digits, '-' "
         "and '.'), got 'High-Priority'"),
        (gang(name="kube-batch"),
         "batch_scheduler.name must be one of ['volcano', 'yunikorn'], got 'kube-batch'"),
        (gang(name="volcano", queue="GPU queue"),
         "batch_scheduler.queue must name a Volcano Queue (lowercase letters, digits, '-' and '.'), "
         "got 'GPU queue'"),
        (gang(name="yunikorn", queue="root/gpu"),
         "batch_scheduler.queue must be a YuniKorn queue path usable as a label value, such as "
         "'root.default', got 'root/gpu'"),
        (gang(name="yunikorn", priority_class_name="ml-training"),
         "batch_scheduler.priority_class_name is used only by Volcano; yunikorn ignores it"),
        (gang(name="yunikorn", resources={"nvidia.com/gpu": "2"}),
         "batch_scheduler.resources is used only by Volcano; yunikorn ignores it"),
        (gang(name="volcano", priority_class_name="ML"),
         "batch_scheduler.priority_class_name must be a PriorityClass name"),
        (gang(name="volcano", resources={"nvidia.com/gpu": 2}),
         "batch_scheduler.resources['nvidia.com/gpu'] must be a Kubernetes quantity string such as '2', "
         "'500m' or '16Gi', got 2"),
        (gang(name="volcano", resources={"nvidia.com/gpu": "-2"}),
         "batch_scheduler.resources['nvidia.com/gpu'] must be a Kubernetes quantity string"),
        (gang(name="volcano", resources={"GPU": "2"}),
         "batch_scheduler.resources key must be a resource name such as 'cpu' or 'nvidia.com/gpu', "
         "got 'GPU'"),
    ],
)
def test_bad_placement_or_scheduling_fails_naming_the_field(job, message):
    with pytest.raises(SparkApplicationSpecError) as raised:
        render_manifest(job, name="f-20130630-abcdef12", namespace="ml-dev")
    assert message in str(raised.value)


def test_placement_scheduling_and_jars_render_into_the_crd_fields():
    job = SparkJob(
        name="train", main_application_file="spark_jobs/train.py", image="registry.example/spark:1",
        driver=PodResources(cores=1, memory="2g", memory_overhead="1g",
                            placement=Placement(priority_class_name="ml-training")),
        executor=PodResources(
            cores=4, memory="8g", gpu=Gpu(name="nvidia.com/gpu", quantity=1), memory_overhead="6g",
            placement=Placement(
                node_selector={"nvidia.com/gpu.present": "true"},
                tolerations=(Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
                             Toleration(key="pool", value="gpu"),
                             Toleration(key="node.kubernetes.io/unreachable", operator="Exists",
                                        effect="NoExecute", toleration_seconds=300),
                             Toleration(operator="Exists")),
                priority_class_name="ml-training",
            ),
        ),
        executor_instances=2,
        jars=("https://repo1.maven.org/maven2/com/nvidia/rapids-4-spark_2.13/26.10.0/"
              "rapids-4-spark_2.13-26.10.0.jar",),
        batch_scheduler=BatchScheduler(name="volcano", queue="gpu-training",
                                       priority_class_name="ml-training",
                                       resources={"nvidia.com/gpu": "2", "cpu": "9", "memory": "34Gi"}),
    )
    spec = render_manifest(job, name="train-20130630-abcdef12", namespace="ml-prod")["spec"]
    assert spec["driver"] == {"cores": 1, "memory": "2g", "coreLimit": "1", "memoryOverhead": "1g",
                              "priorityClassName": "ml-training", "serviceAccount": "spark", "labels": {},
                              **RESTRICTED}
    assert spec["executor"] == {
        "cores": 4, "memory": "8g", "coreLimit": "4", "gpu": {"name": "nvidia.com/gpu", "quantity": 1},
        "memoryOverhead": "6g",
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "pool", "operator": "Equal", "value": "gpu"},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"operator": "Exists"},
        ],
        "priorityClassName": "ml-training", "instances": 2, "labels": {}, **RESTRICTED,
    }
    assert spec["deps"] == {"pyFiles": [], "jars": [
        "https://repo1.maven.org/maven2/com/nvidia/rapids-4-spark_2.13/26.10.0/rapids-4-spark_2.13-26.10.0.jar"]}
    assert (spec["batchScheduler"], spec["batchSchedulerOptions"]) == (
        "volcano", {"queue": "gpu-training", "priorityClassName": "ml-training",
                    "resources": {"nvidia.com/gpu": "2", "cpu": "9", "memory": "34Gi"}})
    assert "nodeSelector" not in spec  # only per role: the webhook refuses both levels at once


def test_yunikorn_without_options_renders_only_the_scheduler_name():
    spec = render_manifest(job_with(batch_scheduler=BatchScheduler(name="yunikorn")),
                           name="f-20130630-abcdef12", namespace="ml-dev")["spec"]
    assert spec["batchScheduler"] == "yunikorn" and "batchSchedulerOptions" not in spec

