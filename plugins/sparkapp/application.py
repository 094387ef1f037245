"""The typed description of a Spark job and its rendering into a ``SparkApplication`` manifest.

A :class:`SparkJob` says what runs (program, resources, Spark settings); :func:`render_manifest`
turns it, with the run's arguments, into the ``sparkoperator.k8s.io/v1beta2`` object that every
backend executes: the Spark Operator on Kubernetes, or local ``spark-submit`` on one machine.
The manifest is the single description of the job; nothing else says how it runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

API_VERSION = "sparkoperator.k8s.io/v1beta2"
KIND = "SparkApplication"

#: Where the job image holds the project (its ``spark_jobs/`` among it); ``local://`` paths point here.
IMAGE_APP_ROOT = "/opt/spark/work-dir"
#: The project's folders on the job image's ``PYTHONPATH``, relative to ``IMAGE_APP_ROOT``: jobs
#: import ``spark_jobs.*`` and the pipeline's shared code (``flight_delays.*`` under ``plugins/``).
PYTHON_PATH = (".", "plugins")

#: Spark version of the job image; it must match the pinned ``pyspark`` (a test checks it).
SPARK_VERSION = "4.3.0"
#: The uid and gid of the ``spark`` user of the official apache/spark images, which the job image keeps.
SPARK_UID = 185
#: The Prometheus JMX exporter java agent in the job image (Dockerfile.spark downloads it there); the
#: operator starts it in the driver and executors (``spec.monitoring``), serving ``METRICS_PORT``.
JMX_EXPORTER_VERSION = "1.0.1"
JMX_EXPORTER_JAR = f"/opt/spark/monitoring/jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"
METRICS_PORT = 8090

#: The pods' security context: Kubernetes' Pod Security Standard "restricted" (non-root, no
#: privilege escalation, no capabilities, the runtime's seccomp profile). The operator's mutating
#: webhook applies it; a namespace enforcing "restricted" refuses pods without it.
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": SPARK_UID,
    "runAsGroup": SPARK_UID,
    "fsGroup": SPARK_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": SPARK_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: Prometheus metrics of the driver and executors, through the JMX exporter.
MONITORING = {
    "exposeDriverMetrics": True,
    "exposeExecutorMetrics": True,
    "prometheus": {"jmxExporterJar": JMX_EXPORTER_JAR, "port": METRICS_PORT},
}

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MEMORY = re.compile(r"^[1-9][0-9]*[kmgt]$")
#: A Kubernetes CPU quantity: whole or decimal cores, or millicores ("500m").
_CPU_QUANTITY = re.compile(r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$")
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
#: A DNS-1123 subdomain: names of PriorityClasses and Volcano queues (at most 253 characters).
_DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: A label key: an optional DNS-1123 subdomain prefix and "/", then a name of at most 63 characters.
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
#: A label value (may be empty): at most 63 characters, alphanumeric at both ends.
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
#: A non-negative Kubernetes quantity, as the CRD's pattern for batchSchedulerOptions.resources.
_QUANTITY = re.compile(r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                       r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
#: A jar given by URI: a scheme, then a path ending in ".jar".
_JAR_URI = re.compile(r"^[a-z][a-z0-9+.-]*://\S+\.jar$")

#: sparkConf keys the Spark Operator v2.5 webhook rejects, and the spec field to use instead.
DENIED_SPARK_CONF = {
    "spark.master": "the operator sets the master",
    "spark.kubernetes.driver.master": "the operator sets the master",
    "spark.kubernetes.container.image": "use SparkJob.image (spec.image)",
    "spark.kubernetes.driver.container.image": "use SparkJob.image (spec.image)",
    "spark.kubernetes.executor.container.image": "use SparkJob.image (spec.image)",
    "spark.kubernetes.authenticate.driver.serviceAccountName": "use SparkJob.service_account",
    "spark.kubernetes.authenticate.executor.serviceAccountName": "use SparkJob.service_account",
    "spark.kubernetes.namespace": "the namespace is the task's (metadata.namespace)",
    "spark.kubernetes.authenticate.oauthToken": "credentials are the operator's",
    "spark.kubernetes.authenticate.oauthTokenFile": "credentials are the operator's",
    "spark.kubernetes.authenticate.driver.oauthToken": "credentials are the operator's",
    "spark.kubernetes.authenticate.driver.oauthTokenFile": "credentials are the operator's",
    "spark.kubernetes.authenticate.executor.oauthToken": "credentials are the operator's",
    "spark.kubernetes.authenticate.executor.oauthTokenFile": "credentials are the operator's",
}
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_LENGTH = 63
#: Annotation holding a hash of the rendered spec: same hash, same work.
SPEC_HASH_ANNOTATION = "sparkapp.airflow.apache.org/spec-hash"
#: Room left in a name for "-YYYYMMDD-" and an 8-character hash.
MAX_JOB_NAME_LENGTH = MAX_NAME_LENGTH - 18


class SparkApplicationSpecError(ValueError):
    """A SparkApplication cannot be rendered from the given description."""


@dataclass(frozen=True)
class Gpu:
    """GPUs of each pod, as the Spark Operator's ``gpu`` field: both name and quantity are required.

    :param name: the extended resource, e.g. ``nvidia.com/gpu``.
    :param quantity: GPUs per pod, at least 1.
    """

    name: str
    quantity: int = 1

    def validate(self, role: str) -> None:
        if not self.name or not _RESOURCE_NAME.match(self.name):
            raise SparkApplicationSpecError(
                f"{role}.gpu.name must be a resource name such as 'nvidia.com/gpu', got {self.name!r}"
            )
        if not isinstance(self.quantity, int) or self.quantity < 1:
            raise SparkApplicationSpecError(
                f"{role}.gpu.quantity must be an integer >= 1, got {self.quantity!r}"
            )

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
        if self.operator not in TOLERATION_OPERATORS:
            raise SparkApplicationSpecError(
                f"{where}.operator must be 'Equal' or 'Exists', got {self.operator!r}"
            )
        if not isinstance(self.key, str) or (self.key and not _LABEL_KEY.match(self.key)):
            raise SparkApplicationSpecError(
                f"{where}.key must be a label key such as 'nvidia.com/gpu', got {self.key!r}"
            )
        if not self.key and self.operator != "Exists":
            raise SparkApplicationSpecError(
                f"{where} has no key, so its operator must be 'Exists' (tolerate every taint), "
                f"got {self.operator!r}"
            )
        if self.operator == "Exists" and self.value:
            raise SparkApplicationSpecError(
                f"{where}.value must be empty with operator 'Exists', got {self.value!r}"
            )
        if not isinstance(self.value, str) or not _LABEL_VALUE.match(self.value):
            raise SparkApplicationSpecError(
                f"{where}.value must be a label value (at most 63 letters, digits, '-', '_' or '.'), "
                f"got {self.value!r}"
            )
        if self.effect is not None and self.effect not in TAINT_EFFECTS:
            raise SparkApplicationSpecError(
                f"{where}.effect must be one of {list(TAINT_EFFECTS)} or None (every effect), "
                f"got {self.effect!r}"
            )
        if self.toleration_seconds is not None:
            if self.effect != "NoExecute":
                raise SparkApplicationSpecError(
                    f"{where}.toleration_seconds needs effect 'NoExecute', got effect {self.effect!r}"
                )
            seconds = self.toleration_seconds
            if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
                raise SparkApplicationSpecError(
                    f"{where}.toleration_seconds must be an integer >= 0, got {seconds!r}"
                )

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
            if not isinstance(key, str) or not _LABEL_KEY.match(key):
                raise SparkApplicationSpecError(
                    f"{role}.placement.node_selector key must be a label key such as "
                    f"'nvidia.com/gpu.present', got {key!r}"
                )
            if not isinstance(value, str) or not _LABEL_VALUE.match(value):
                raise SparkApplicationSpecError(
                    f"{role}.placement.node_selector[{key!r}] must be a label value (a string of at most "
                    f"63 letters, digits, '-', '_' or '.'), got {value!r}"
                )
        for index, toleration in enumerate(self.tolerations):
            if not isinstance(toleration, Toleration):
                raise SparkApplicationSpecError(
                    f"{role}.placement.tolerations[{index}] must be a Toleration, got {toleration!r}"
                )
            toleration.validate(f"{role}.placement.tolerations[{index}]")
        name = self.priority_class_name
        if name is not None and (not isinstance(name, str) or len(name) > 253
                                 or not _DNS_1123_SUBDOMAIN.match(name)):
            raise SparkApplicationSpecError(
                f"{role}.placement.priority_class_name must be a PriorityClass name (lowercase letters, "
                f"digits, '-' and '.'), got {name!r}"
            )

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
        if not isinstance(self.cores, int) or isinstance(self.cores, bool) or self.cores < 1:
            raise SparkApplicationSpecError(
                f"{role}.cores must be an integer >= 1, got {self.cores!r} "
                f"(fractional CPU goes into {role}.core_request, e.g. '500m')"
            )
        if not isinstance(self.memory, str) or not _MEMORY.match(self.memory):
            raise SparkApplicationSpecError(
                f"{role}.memory must be a positive size with a unit k, m, g or t (e.g. '2g'), "
                f"got {self.memory!r}"
            )
        for name in ("core_request", "core_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _CPU_QUANTITY.match(value)):
                raise SparkApplicationSpecError(
                    f"{role}.{name} must be a CPU quantity such as '500m' or '1.5', got {value!r}"
                )
        if self.gpu is not None:
            self.gpu.validate(role)
        overhead = self.memory_overhead
        if overhead is not None and (not isinstance(overhead, str) or not _MEMORY.match(overhead)):
            raise SparkApplicationSpecError(
                f"{role}.memory_overhead must be a positive size with a unit k, m, g or t (e.g. '2g'), "
                f"got {overhead!r}"
            )
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
        if self.name not in BATCH_SCHEDULERS:
            raise SparkApplicationSpecError(
                f"batch_scheduler.name must be one of {list(BATCH_SCHEDULERS)}, got {self.name!r}"
            )
        queue = self.queue
        # A Volcano queue is an object, named as one; the operator puts YuniKorn's in a pod label.
        if self.name == "volcano" and queue is not None and not (
                isinstance(queue, str) and len(queue) <= 253 and _DNS_1123_SUBDOMAIN.match(queue)):
            raise SparkApplicationSpecError(
                f"batch_scheduler.queue must name a Volcano Queue (lowercase letters, digits, '-' and '.'), "
                f"got {queue!r}"
            )
        if self.name == "yunikorn" and queue is not None and not (
                isinstance(queue, str) and queue and _LABEL_VALUE.match(queue)):
            raise SparkApplicationSpecError(
                f"batch_scheduler.queue must be a YuniKorn queue path usable as a label value, such as "
                f"'root.default', got {queue!r}"
            )
        volcano_only = {"priority_class_name": self.priority_class_name is not None,
                        "resources": bool(self.resources)}
        for option, given in volcano_only.items():
            if given and self.name != "volcano":
                raise SparkApplicationSpecError(
                    f"batch_scheduler.{option} is used only by Volcano; {self.name} ignores it "
                    f"(remove it, or use name='volcano')"
                )
        name = self.priority_class_name
        if name is not None and (not isinstance(name, str) or len(name) > 253
                                 or not _DNS_1123_SUBDOMAIN.match(name)):
            raise SparkApplicationSpecError(
                f"batch_scheduler.priority_class_name must be a PriorityClass name (lowercase letters, "
                f"digits, '-' and '.'), got {name!r}"
            )
        for resource, quantity in self.resources.items():
            if not isinstance(resource, str) or not _RESOURCE_NAME.match(resource):
                raise SparkApplicationSpecError(
                    f"batch_scheduler.resources key must be a resource name such as 'cpu' or "
                    f"'nvidia.com/gpu', got {resource!r}"
                )
            if not isinstance(quantity, str) or not _QUANTITY.match(quantity):
                raise SparkApplicationSpecError(
                    f"batch_scheduler.resources[{resource!r}] must be a Kubernetes quantity string such as "
                    f"'2', '500m' or '16Gi', got {quantity!r}"
                )

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


#: The profile a job's own resources make up.
DEFAULT_PROFILE = "cpu"


@dataclass(frozen=True)
class SparkJob:
    """A PySpark program and the resources it runs with: one SparkApplication per run.

    :param name: short DNS-1035 name of the job; application names start with it.
    :param main_application_file: the program, relative to the project root (``spark_jobs/x.py``).
    :param image: the Spark job image on Kubernetes.
    :param driver: driver resources.
    :param executor: resources of each executor.
    :param executor_instances: number of executors on Kubernetes.
    :param spark_conf: Spark settings, the same on every backend.
    :param py_files: extra Python files or archives, relative to the project root.
    :param service_account: the driver's Kubernetes service account.
    :param jars: jar URIs on the driver's and executors' class path (``spec.deps.jars``), e.g.
        ``https://repo1.maven.org/...`` or ``local:///opt/...`` (a path inside the image).
    :param batch_scheduler: gang scheduling of the job's applications (Volcano or YuniKorn), or None
        for the cluster's default scheduler.
    :param profiles: other resource profiles by name (e.g. ``gpu``); the job's own fields are the
        ``cpu`` profile.
    """

    name: str
    main_application_file: str
    image: str
    driver: PodResources = PodResources()
    executor: PodResources = PodResources()
    executor_instances: int = 1
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    py_files: Sequence[str] = ()
    service_account: str = "spark"
    jars: Sequence[str] = ()
    batch_scheduler: BatchScheduler | None = None
    profiles: Mapping[str, ResourceProfile] = field(default_factory=dict)

    @property
    def profile_names(self) -> list[str]:
        return [DEFAULT_PROFILE, *self.profiles]

    def with_profile(self, name: str) -> SparkJob:
        """This job with the resources, Spark settings, image, jars and scheduler of profile ``name``.

        The profile's resources replace the job's; its Spark settings override the job's; its jars
        come after the job's; its image and batch scheduler, when given, replace the job's.
        """
        if name == DEFAULT_PROFILE:
            return self
        if name not in self.profiles:
            raise SparkApplicationSpecError(
                f"job {self.name!r} has no profile {name!r}; its profiles are {self.profile_names}"
            )
        profile = self.profiles[name]
        return replace(self, driver=profile.driver, executor=profile.executor,
                       executor_instances=profile.executor_instances,
                       spark_conf={**self.spark_conf, **profile.spark_conf},
                       image=profile.image if profile.image is not None else self.image,
                       jars=tuple(dict.fromkeys([*self.jars, *profile.jars])),
                       batch_scheduler=profile.batch_scheduler or self.batch_scheduler, profiles={})

    def validate(self) -> None:
        if len(self.name) > MAX_JOB_NAME_LENGTH or not _DNS_1035.match(self.name):
            raise SparkApplicationSpecError(
                f"job name {self.name!r} must be a DNS-1035 label (lowercase letters, digits and '-', "
                f"starting with a letter) of at most {MAX_JOB_NAME_LENGTH} characters"
            )
        if not isinstance(self.image, str) or not self.image or any(c.isspace() for c in self.image):
            raise SparkApplicationSpecError(
                f"image must be an image reference such as 'ghcr.io/org/spark:1.0', got {self.image!r}"
            )
        self.driver.validate("driver")
        self.executor.validate("executor")
        if self.executor_instances < 1:
            raise SparkApplicationSpecError(
                f"executor_instances must be >= 1, got {self.executor_instances!r}"
            )
        bad_conf = {k: v for k, v in self.spark_conf.items() if not isinstance(v, str)}
        if bad_conf:
            raise SparkApplicationSpecError(f"sparkConf values must be strings, got {bad_conf!r}")
        denied = sorted(set(self.spark_conf) & set(DENIED_SPARK_CONF))
        if denied:
            raise SparkApplicationSpecError(
                f"sparkConf key {denied[0]!r} is rejected by the Spark Operator: "
                f"{DENIED_SPARK_CONF[denied[0]]}"
            )
        self._validate_gpu_conf()
        for index, jar in enumerate(self.jars):
            if not isinstance(jar, str) or not _JAR_URI.match(jar):
                raise SparkApplicationSpecError(
                    f"jars[{index}] must be the URI of a .jar file with a scheme (local://, https://, "
                    f"s3a://, ...), got {jar!r}"
                )
            if jar.startswith("http://"):
                raise SparkApplicationSpecError(
                    f"jars[{index}] {jar!r} would be downloaded unencrypted and run on every executor: "
                    f"use https://"
                )
        if self.batch_scheduler is not None:
            self.batch_scheduler.validate()

    def _validate_gpu_conf(self) -> None:
        # The pod's GPUs (the operator's `gpu` field) and Spark's resource request must agree, or the
        # executor asks Kubernetes for one number of GPUs and schedules tasks on another.
        gpu = self.executor.gpu
        amount = self.spark_conf.get("spark.executor.resource.gpu.amount")
        vendor = self.spark_conf.get("spark.executor.resource.gpu.vendor")
        if gpu is None:
            if amount is not None:
                raise SparkApplicationSpecError(
                    f"sparkConf spark.executor.resource.gpu.amount is {amount!r} but the executor has no "
                    f"gpu: set executor.gpu (e.g. Gpu(name='nvidia.com/gpu', quantity={amount}))"
                )
            return
        if amount is not None and amount != str(gpu.quantity):
            raise SparkApplicationSpecError(
                f"executor.gpu.quantity is {gpu.quantity} but sparkConf spark.executor.resource.gpu.amount "
                f"is {amount!r}: they must be equal"
            )
        expected_vendor = gpu.name.rsplit("/", 1)[0]
        if vendor is not None and "/" in gpu.name and vendor != expected_vendor:
            raise SparkApplicationSpecError(
                f"executor.gpu.name is {gpu.name!r} but sparkConf spark.executor.resource.gpu.vendor is "
                f"{vendor!r}: the vendor must be the resource's domain, {expected_vendor!r}"
            )


#: How long the operator keeps a finished application before deleting it (``timeToLiveSeconds``): a
#: day, long after the sensor read its end, so that finished applications do not fill the
#: namespace's quota (``count/sparkapplications``). Driver logs are copied into the task log first.
APPLICATION_TTL_SECONDS = 24 * 60 * 60

#: The deployment's settings of the driver and executor pods, read from the submitting worker's
#: environment (deploy/ sets them; unset on one machine, where there are no pods).
DATA_CLAIM_ENV = "SPARKAPP_DATA_CLAIM"
DATA_MOUNT_ENV = "SPARKAPP_DATA_MOUNT"
ENV_SECRETS_ENV = "SPARKAPP_ENV_SECRETS"  # pragma: allowlist secret (a variable name)
EVENT_LOG_DIR_ENV = "SPARK_EVENT_LOG_DIR"
#: The name of the data volume in the pods.
DATA_VOLUME = "data"


@dataclass(frozen=True)
class PodEnvironment:
    """What the driver and executor pods get from their namespace: the shared data volume, the
    Secrets whose keys become their environment (credentials), and where Spark writes event logs.

    Volumes and ``envFrom`` reach the pods through the operator's mutating webhook. The local backend
    has no pods and ignores them; the event log settings are Spark's and apply everywhere.

    :param data_claim: a ReadWriteMany PersistentVolumeClaim holding the data root, or None.
    :param data_mount: where the pods mount it (the data root's path), with ``data_claim``.
    :param env_secrets: Secrets of the namespace whose keys become environment variables, e.g. the
        MLflow credentials the training job logs with.
    :param event_log_dir: Spark's ``spark.eventLog.dir`` (what a Spark History Server reads), or None.
    """

    data_claim: str | None = None
    data_mount: str | None = None
    env_secrets: Sequence[str] = ()
    event_log_dir: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PodEnvironment:
        """Read ``$SPARKAPP_DATA_CLAIM``, ``$SPARKAPP_DATA_MOUNT``, ``$SPARKAPP_ENV_SECRETS``
        (comma-separated) and ``$SPARK_EVENT_LOG_DIR``, validated."""
        secrets = tuple(name.strip() for name in environ.get(ENV_SECRETS_ENV, "").split(",") if name.strip())
        environment = cls(data_claim=environ.get(DATA_CLAIM_ENV) or None,
                          data_mount=environ.get(DATA_MOUNT_ENV) or None, env_secrets=secrets,
                          event_log_dir=environ.get(EVENT_LOG_DIR_ENV) or None)
        environment.validate()
        return environment

    def validate(self) -> None:
        if (self.data_claim is None) != (self.data_mount is None):
            raise SparkApplicationSpecError(
                f"${DATA_CLAIM_ENV} and ${DATA_MOUNT_ENV} go together (the claim and where it is mounted), "
                f"got claim {self.data_claim!r} and mount {self.data_mount!r}"
            )
        for what, name in [("data claim", self.data_claim), *(("env Secret", n) for n in self.env_secrets)]:
            if name is not None and (len(name) > 253 or not _DNS_1123_SUBDOMAIN.match(name)):
                raise SparkApplicationSpecError(
                    f"the {what} {name!r} must be a Kubernetes object name (lowercase letters, digits, "
                    f"'-' and '.')"
                )
        if self.data_mount is not None and not self.data_mount.startswith("/"):
            raise SparkApplicationSpecError(
                f"${DATA_MOUNT_ENV} must be an absolute path, got {self.data_mount!r}")

    def spark_conf(self) -> dict[str, str]:
        if self.event_log_dir is None:
            return {}
        return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": self.event_log_dir}

    def apply(self, spec: dict) -> None:
        """Add the volume and the Secrets to a rendered spec's driver and executor."""
        if self.data_claim is not None:
            spec["volumes"] = [{"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": self.data_claim}}]
        for role in ("driver", "executor"):
            if self.data_claim is not None:
                spec[role]["volumeMounts"] = [{"name": DATA_VOLUME, "mountPath": self.data_mount}]
            if self.env_secrets:
                spec[role]["envFrom"] = [{"secretRef": {"name": name}} for name in self.env_secrets]


def application_name(job_name: str, *, dag_id: str, task_id: str, data_interval_start: datetime,
                     map_index: int = -1) -> str:
    """Return the deterministic application name of one task's work on one data interval.

    The same (dag, task, interval, map index) always gives the same name, so a retry finds the
    application of the earlier try instead of creating a second one.
    """
    identity = f"{dag_id}/{task_id}/{data_interval_start.isoformat()}/{map_index}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{job_name}-{data_interval_start:%Y%m%d}-{digest}"


def label_value(value: str) -> str:
    """Return ``value`` in a form Kubernetes accepts as a label value (<= 63 chars, alphanumeric ends)."""
    return _LABEL_UNSAFE.sub("_", value).strip("._-")[:63].rstrip("._-")


#: sparkConf keys that identify the run to OpenLineage, not the work: the parent run id the provider
#: derives changes with each try of the task, and a retry must still adopt its application.
LINEAGE_CONF_PREFIX = "spark.openlineage."


def spec_hash(spec: dict) -> str:
    """A stable hash of a SparkApplication spec (key order and lineage settings do not matter)."""
    conf = {k: v for k, v in spec.get("sparkConf", {}).items() if not k.startswith(LINEAGE_CONF_PREFIX)}
    work = {**spec, "sparkConf": conf} if "sparkConf" in spec else spec
    return hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:16]


def render_manifest(job: SparkJob, *, name: str, namespace: str, arguments: Sequence[str] = (),
                    labels: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None,
                    pod_environment: PodEnvironment | None = None) -> dict:
    """Render ``job`` as a SparkApplication object, validating it first.

    :param job: what runs.
    :param name: the application name (see :func:`application_name`).
    :param namespace: the namespace the application is created in.
    :param arguments: the program's arguments for this run.
    :param labels: labels of the application and of its driver and executor pods.
    :param annotations: annotations of the application; the spec hash is added to them.
    :param pod_environment: the deployment's data volume, Secrets and event log directory, or None.
    """
    if pod_environment is not None:
        pod_environment.validate()
        job = replace(job, spark_conf={**job.spark_conf, **pod_environment.spark_conf()})
    job.validate()
    if len(name) > MAX_NAME_LENGTH or not _DNS_1035.match(name):
        raise SparkApplicationSpecError(
            f"metadata.name {name!r} must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters"
        )
    pod_labels = dict(labels or {})
    spec = {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": job.image,
        "imagePullPolicy": "IfNotPresent",
        "mainApplicationFile": f"local://{IMAGE_APP_ROOT}/{job.main_application_file}",
        "arguments": [str(a) for a in arguments],
        "sparkVersion": SPARK_VERSION,
        "sparkConf": dict(job.spark_conf),
        "deps": {
            "pyFiles": [f"local://{IMAGE_APP_ROOT}/{p}" for p in job.py_files],
            **({"jars": list(job.jars)} if job.jars else {}),
        },
        **(job.batch_scheduler.as_spec() if job.batch_scheduler is not None else {}),
        "restartPolicy": {
            "type": "OnFailure",
            "onFailureRetries": 2,
            "onFailureRetryInterval": 30,
            "onSubmissionFailureRetries": 3,
            "onSubmissionFailureRetryInterval": 60,
        },
        "driver": {
            **job.driver.as_spec(),
            "serviceAccount": job.service_account,
            "labels": dict(pod_labels),
            "podSecurityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
            "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),
        },
        "executor": {
            **job.executor.as_spec(),
            "instances": job.executor_instances,
            "labels": dict(pod_labels),
            "podSecurityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
            "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),
        },
        "monitoring": copy.deepcopy(MONITORING),
        "timeToLiveSeconds": APPLICATION_TTL_SECONDS,
    }
    if pod_environment is not None:
        pod_environment.apply(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": pod_labels,
            "annotations": {**(annotations or {}), SPEC_HASH_ANNOTATION: spec_hash(spec)},
        },
        "spec": spec,
    }
