"""What the driver and the executors get, where they run, and how the whole application is scheduled.

Each class renders one part of the CRD (``as_spec``) and checks its fields first (``validate``),
naming the field that is wrong, with the helpers of :mod:`sparkapp.application.names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sparkapp.application.names import (
    CPU_QUANTITY,
    PRIORITY_CLASS_NAME,
    SIZE,
    check,
    is_count,
    is_label_key,
    is_label_value,
    is_object_name,
    is_quantity,
    is_resource_name,
    require,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


@dataclass(frozen=True)
class Gpu:
    """GPUs of each pod, as the Spark Operator's ``gpu`` field: both name and quantity are required.

    :param name: the extended resource, e.g. ``nvidia.com/gpu``.
    :param quantity: GPUs per pod, at least 1.
    """

    name: str
    quantity: int = 1

    def validate(self, role: str) -> None:
        check(f"{role}.gpu.name", self.name, is_resource_name(self.name),
              "must be a resource name such as 'nvidia.com/gpu'")
        check(f"{role}.gpu.quantity", self.quantity, isinstance(self.quantity, int) and self.quantity >= 1,
              "must be an integer >= 1")

    def as_spec(self) -> dict:
        return {"name": self.name, "quantity": self.quantity}


#: Toleration operators and taint effects, as Kubernetes' core/v1 API defines them.
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class Toleration:
    """A taint the pod tolerates, as Kubernetes' ``Toleration`` (e.g. the taint of GPU nodes).

    :param key: the taint's key; empty (with ``Exists``) tolerates every taint.
    :param operator: ``Equal`` (the taint's value must be ``value``) or ``Exists`` (any value).
    :param value: the taint's value, for ``Equal``; empty for ``Exists``.
    :param effect: ``NoSchedule``, ``PreferNoSchedule`` or ``NoExecute``; None matches every effect.
    :param toleration_seconds: with ``NoExecute`` only: how long the pod stays on a node after the
        taint appears (None: forever).
    """

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str | None = None
    toleration_seconds: int | None = None

    def validate(self, where: str) -> None:
        check(f"{where}.operator", self.operator, self.operator in TOLERATION_OPERATORS,
              "must be 'Equal' or 'Exists'")
        check(f"{where}.key", self.key, self.key == "" or is_label_key(self.key),
              "must be a label key such as 'nvidia.com/gpu'")
        require(bool(self.key) or self.operator == "Exists",
                f"{where} has no key, so its operator must be 'Exists' (tolerate every taint), "
                f"got {self.operator!r}")
        check(f"{where}.value", self.value, self.operator != "Exists" or not self.value,
              "must be empty with operator 'Exists'")
        check(f"{where}.value", self.value, is_label_value(self.value),
              "must be a label value (at most 63 letters, digits, '-', '_' or '.')")
        check(f"{where}.effect", self.effect, self.effect is None or self.effect in TAINT_EFFECTS,
              f"must be one of {list(TAINT_EFFECTS)} or None (every effect)")
        if self.toleration_seconds is not None:
            require(self.effect == "NoExecute",
                    f"{where}.toleration_seconds needs effect 'NoExecute', got effect {self.effect!r}")
            seconds = self.toleration_seconds
            check(f"{where}.toleration_seconds", seconds, is_count(seconds, 0), "must be an integer >= 0")

    def as_spec(self) -> dict:
        spec: dict = {"key": self.key} if self.key else {}
        spec["operator"] = self.operator
        if self.value:
            spec["value"] = self.value
        if self.effect is not None:
            spec["effect"] = self.effect
        if self.toleration_seconds is not None:
            spec["tolerationSeconds"] = self.toleration_seconds
        return spec


@dataclass(frozen=True)
class Placement:
    """Where the driver or the executors may run, and how they rank against other pods.

    The Spark Operator applies these through its mutating webhook: without the webhook they
    silently do nothing.

    :param node_selector: node labels the pod requires, e.g. ``{"nvidia.com/gpu.present": "true"}``.
    :param tolerations: taints the pod tolerates, e.g. the taint that keeps other pods off GPU nodes.
    :param priority_class_name: the pod's PriorityClass; it must exist in the cluster, or Kubernetes
        refuses the pod.
    """

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Toleration] = ()
    priority_class_name: str | None = None

    def validate(self, role: str) -> None:
        for key, value in self.node_selector.items():
            check(f"{role}.placement.node_selector key", key, is_label_key(key),
                  "must be a label key such as 'nvidia.com/gpu.present'")
            check(f"{role}.placement.node_selector[{key!r}]", value, is_label_value(value),
                  "must be a label value (a string of at most 63 letters, digits, '-', '_' or '.')")
        for index, toleration in enumerate(self.tolerations):
            check(f"{role}.placement.tolerations[{index}]", toleration, isinstance(toleration, Toleration),
                  "must be a Toleration")
            toleration.validate(f"{role}.placement.tolerations[{index}]")
        PRIORITY_CLASS_NAME.check(f"{role}.placement.priority_class_name", self.priority_class_name,
                                  optional=True)

    def as_spec(self) -> dict:
        spec: dict = {}
        if self.node_selector:
            spec["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            spec["tolerations"] = [t.as_spec() for t in self.tolerations]
        if self.priority_class_name is not None:
            spec["priorityClassName"] = self.priority_class_name
        return spec


@dataclass(frozen=True)
class PodResources:
    """What the driver or each executor gets (CPU, memory, GPUs), and where it runs.

    :param cores: whole cores given to Spark (``spark.{driver,executor}.cores``), at least 1.
    :param memory: JVM heap in Spark's notation, e.g. ``"512m"`` or ``"2g"``.
    :param core_request: the pod's CPU request when it differs from ``cores``, e.g. ``"500m"``
        (fractional CPU goes here, never into ``cores``).
    :param core_limit: the pod's CPU limit, e.g. ``"2"``; default ``cores`` (every pod has a CPU limit,
        which namespaces with a CPU quota require).
    :param gpu: GPUs of the pod, or None.
    :param memory_overhead: non-heap memory of the pod in Spark's notation (``memoryOverhead``);
        it replaces Spark's default (10% of ``memory``, 40% for Python jobs on Kubernetes), it is not
        added to it.
    :param placement: node selector, tolerations and priority class of the pod, or None.
    """

    cores: int = 1
    memory: str = "1g"
    core_request: str | None = None
    core_limit: str | None = None
    gpu: Gpu | None = None
    memory_overhead: str | None = None
    placement: Placement | None = None

    def validate(self, role: str) -> None:
        require(is_count(self.cores, 1),
                f"{role}.cores must be an integer >= 1, got {self.cores!r} "
                f"(fractional CPU goes into {role}.core_request, e.g. '500m')")
        SIZE.check(f"{role}.memory", self.memory)
        CPU_QUANTITY.check(f"{role}.core_request", self.core_request, optional=True)
        CPU_QUANTITY.check(f"{role}.core_limit", self.core_limit, optional=True)
        if self.gpu is not None:
            self.gpu.validate(role)
        SIZE.check(f"{role}.memory_overhead", self.memory_overhead, optional=True)
        if self.placement is not None:
            self.placement.validate(role)

    def as_spec(self) -> dict:
        spec: dict = {"cores": self.cores, "memory": self.memory}
        if self.core_request is not None:
            spec["coreRequest"] = self.core_request
        spec["coreLimit"] = self.core_limit if self.core_limit is not None else str(self.cores)
        if self.gpu is not None:
            spec["gpu"] = self.gpu.as_spec()
        if self.memory_overhead is not None:
            spec["memoryOverhead"] = self.memory_overhead
        if self.placement is not None:
            spec.update(self.placement.as_spec())
        return spec


#: The batch schedulers the Spark Operator v2.5 integrates (``spec.batchScheduler``).
BATCH_SCHEDULERS = ("volcano", "yunikorn")


@dataclass(frozen=True)
class BatchScheduler:
    """Gang scheduling of the whole application by Volcano or YuniKorn.

    The driver and its executors are admitted together or not at all, so two applications never
    each hold half the GPUs while waiting for the other half. It needs the scheduler installed and
    the operator started with batch scheduling enabled (Helm ``controller.batchScheduler.enable``).

    :param name: ``volcano`` or ``yunikorn`` (``spec.batchScheduler``).
    :param queue: the scheduler's queue (``spec.batchSchedulerOptions.queue``): a Volcano ``Queue``
        object, or a YuniKorn queue path such as ``root.default`` (the operator puts it in the pods'
        ``queue`` label).
    :param priority_class_name: Volcano only: the PriorityClass of the application's PodGroup.
    :param resources: Volcano only: the PodGroup's minimum resources, e.g.
        ``{"nvidia.com/gpu": "2"}``; it replaces the operator's own estimate (CPU and memory of the
        driver and the initial executors).
    """

    name: str
    queue: str | None = None
    priority_class_name: str | None = None
    resources: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        check("batch_scheduler.name", self.name, self.name in BATCH_SCHEDULERS,
              f"must be one of {list(BATCH_SCHEDULERS)}")
        queue = self.queue
        # A Volcano queue is an object, named as one; the operator puts YuniKorn's in a pod label.
        if self.name == "volcano" and queue is not None:
            check("batch_scheduler.queue", queue, is_object_name(queue),
                  "must name a Volcano Queue (lowercase letters, digits, '-' and '.')")
        if self.name == "yunikorn" and queue is not None:
            check("batch_scheduler.queue", queue, bool(queue) and is_label_value(queue),
                  "must be a YuniKorn queue path usable as a label value, such as 'root.default'")
        volcano_only = {"priority_class_name": self.priority_class_name is not None,
                        "resources": bool(self.resources)}
        for option, given in volcano_only.items():
            require(not given or self.name == "volcano",
                    f"batch_scheduler.{option} is used only by Volcano; {self.name} ignores it "
                    f"(remove it, or use name='volcano')")
        PRIORITY_CLASS_NAME.check("batch_scheduler.priority_class_name", self.priority_class_name,
                                  optional=True)
        for resource, quantity in self.resources.items():
            check("batch_scheduler.resources key", resource, is_resource_name(resource),
                  "must be a resource name such as 'cpu' or 'nvidia.com/gpu'")
            check(f"batch_scheduler.resources[{resource!r}]", quantity, is_quantity(quantity),
                  "must be a Kubernetes quantity string such as '2', '500m' or '16Gi'")

    def as_spec(self) -> dict:
        options: dict = {}
        if self.queue is not None:
            options["queue"] = self.queue
        if self.priority_class_name is not None:
            options["priorityClassName"] = self.priority_class_name
        if self.resources:
            options["resources"] = dict(self.resources)
        spec: dict = {"batchScheduler": self.name}
        if options:
            spec["batchSchedulerOptions"] = options
        return spec


@dataclass(frozen=True)
class ResourceProfile:
    """Another way to run a job: its resources and the Spark settings that go with them.

    :param driver: driver resources.
    :param executor: resources of each executor.
    :param executor_instances: number of executors.
    :param spark_conf: settings added to (and overriding) the job's.
    :param image: the Spark image of this profile, instead of the job's (e.g. one with CUDA libraries).
    :param jars: jar URIs added to the job's (``spec.deps.jars``), e.g. a Spark plugin.
    :param batch_scheduler: gang scheduling of this profile's applications, instead of the job's.
    """

    driver: PodResources
    executor: PodResources
    executor_instances: int = 1
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    jars: Sequence[str] = ()
    batch_scheduler: BatchScheduler | None = None
