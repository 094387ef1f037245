"""The typed description of a Spark job and its rendering into a ``SparkApplication`` manifest.

A :class:`SparkJob` says what runs (program, resources, Spark settings); :func:`render_manifest`
turns it, with the run's arguments, into the ``sparkoperator.k8s.io/v1beta2`` object that every
backend executes: the Spark Operator on Kubernetes, or local ``spark-submit`` on one machine.
The manifest is the single description of the job; nothing else says how it runs.
"""

from __future__ import annotations

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

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MEMORY = re.compile(r"^[1-9][0-9]*[kmgt]$")
#: A Kubernetes CPU quantity: whole or decimal cores, or millicores ("500m").
_CPU_QUANTITY = re.compile(r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$")
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")

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


@dataclass(frozen=True)
class PodResources:
    """CPU, memory and GPUs of the driver or of each executor.

    :param cores: whole cores given to Spark (``spark.{driver,executor}.cores``), at least 1.
    :param memory: JVM heap in Spark's notation, e.g. ``"512m"`` or ``"2g"``.
    :param core_request: the pod's CPU request when it differs from ``cores``, e.g. ``"500m"``
        (fractional CPU goes here, never into ``cores``).
    :param core_limit: the pod's CPU limit, e.g. ``"2"``.
    :param gpu: GPUs of the pod, or None.
    """

    cores: int = 1
    memory: str = "1g"
    core_request: str | None = None
    core_limit: str | None = None
    gpu: Gpu | None = None

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

    def as_spec(self) -> dict:
        spec: dict = {"cores": self.cores, "memory": self.memory}
        if self.core_request is not None:
            spec["coreRequest"] = self.core_request
        if self.core_limit is not None:
            spec["coreLimit"] = self.core_limit
        if self.gpu is not None:
            spec["gpu"] = self.gpu.as_spec()
        return spec


@dataclass(frozen=True)
class ResourceProfile:
    """Another way to run a job: its resources and the Spark settings that go with them.

    :param driver: driver resources.
    :param executor: resources of each executor.
    :param executor_instances: number of executors.
    :param spark_conf: settings added to (and overriding) the job's.
    """

    driver: PodResources
    executor: PodResources
    executor_instances: int = 1
    spark_conf: Mapping[str, str] = field(default_factory=dict)


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
    profiles: Mapping[str, ResourceProfile] = field(default_factory=dict)

    @property
    def profile_names(self) -> list[str]:
        return [DEFAULT_PROFILE, *self.profiles]

    def with_profile(self, name: str) -> SparkJob:
        """This job with the resources and Spark settings of profile ``name``."""
        if name == DEFAULT_PROFILE:
            return self
        if name not in self.profiles:
            raise SparkApplicationSpecError(
                f"job {self.name!r} has no profile {name!r}; its profiles are {self.profile_names}"
            )
        profile = self.profiles[name]
        return replace(self, driver=profile.driver, executor=profile.executor,
                       executor_instances=profile.executor_instances,
                       spark_conf={**self.spark_conf, **profile.spark_conf}, profiles={})

    def validate(self) -> None:
        if len(self.name) > MAX_JOB_NAME_LENGTH or not _DNS_1035.match(self.name):
            raise SparkApplicationSpecError(
                f"job name {self.name!r} must be a DNS-1035 label (lowercase letters, digits and '-', "
                f"starting with a letter) of at most {MAX_JOB_NAME_LENGTH} characters"
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


def spec_hash(spec: dict) -> str:
    """A stable hash of a SparkApplication spec (key order does not matter)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def render_manifest(job: SparkJob, *, name: str, namespace: str, arguments: Sequence[str] = (),
                    labels: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None) -> dict:
    """Render ``job`` as a SparkApplication object, validating it first.

    :param job: what runs.
    :param name: the application name (see :func:`application_name`).
    :param namespace: the namespace the application is created in.
    :param arguments: the program's arguments for this run.
    :param labels: labels of the application and of its driver and executor pods.
    :param annotations: annotations of the application; the spec hash is added to them.
    """
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
        "deps": {"pyFiles": [f"local://{IMAGE_APP_ROOT}/{p}" for p in job.py_files]},
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
        },
        "executor": {
            **job.executor.as_spec(),
            "instances": job.executor_instances,
            "labels": dict(pod_labels),
        },
    }
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
