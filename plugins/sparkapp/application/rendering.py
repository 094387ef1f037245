"""Rendering a :class:`~sparkapp.application.job.SparkJob` into a ``SparkApplication`` manifest.

:func:`render_manifest` turns a job, with the run's arguments, into the ``sparkoperator.k8s.io/v1beta2``
object that every backend executes. It points into the job image as an
:class:`~sparkapp.application.image.ImageContract` describes it (this project's by default).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from sparkapp import s3a
from sparkapp.application.image import IMAGE_CONTRACT, ImageContract
from sparkapp.application.names import MAX_NAME_LENGTH, is_dns_1035_label, require

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sparkapp.application.environment import PodEnvironment
    from sparkapp.application.job import SparkJob

API_VERSION = "sparkoperator.k8s.io/v1beta2"
KIND = "SparkApplication"

#: The port the JMX exporter serves the driver's and executors' metrics on (``spec.monitoring``).
METRICS_PORT = 8090


def pod_security_context(image: ImageContract = IMAGE_CONTRACT) -> dict:
    """The pods' security context: Kubernetes' Pod Security Standard "restricted" (non-root, no
    privilege escalation, no capabilities, the runtime's seccomp profile), as the image's user.

    The operator's mutating webhook applies it; a namespace enforcing "restricted" refuses pods
    without it.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": image.spark_uid,
        "runAsGroup": image.spark_uid,
        "fsGroup": image.spark_uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(image: ImageContract = IMAGE_CONTRACT) -> dict:
    """The containers' part of Pod Security Standard "restricted" (see :func:`pod_security_context`)."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": image.spark_uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def monitoring(image: ImageContract = IMAGE_CONTRACT) -> dict:
    """Prometheus metrics of the driver and executors, through the image's JMX exporter."""
    return {
        "exposeDriverMetrics": True,
        "exposeExecutorMetrics": True,
        "prometheus": {"jmxExporterJar": image.jmx_exporter_jar, "port": METRICS_PORT},
    }


#: The security contexts and monitoring of this project's job image.
POD_SECURITY_CONTEXT = pod_security_context()
CONTAINER_SECURITY_CONTEXT = container_security_context()
MONITORING = monitoring()

#: Annotation holding a hash of the rendered spec: same hash, same work.
SPEC_HASH_ANNOTATION = "sparkapp.airflow.apache.org/spec-hash"



def application_name(job_name: str, *, dag_id: str, task_id: str, data_interval_start: datetime,
                     map_index: int = -1) -> str:
    """Return the deterministic application name of one task's work on one data interval.

    The same (dag, task, interval, map index) always gives the same name, so a retry finds the
    application of the earlier try instead of creating a second one.
    """
    identity = f"{dag_id}/{task_id}/{data_interval_start.isoformat()}/{map_index}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{job_name}-{data_interval_start:%Y%m%d}-{digest}"


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
                    pod_environment: PodEnvironment | None = None,
                    image_contract: ImageContract = IMAGE_CONTRACT) -> dict:
    """Render ``job`` as a SparkApplication object, validating it first.

    :param job: what runs.
    :param name: the application name (see :func:`application_name`).
    :param namespace: the namespace the application is created in.
    :param arguments: the program's arguments for this run; when one is an ``s3://`` or ``s3a://``
        URI, the Spark conf gets the S3A settings of :func:`sparkapp.s3a.hadoop_conf`.
    :param labels: labels of the application and of its driver and executor pods.
    :param annotations: annotations of the application; the spec hash is added to them.
    :param pod_environment: the deployment's data volume, Secrets and event log directory, or None.
    :param image_contract: the layout of the job image the manifest points into (this project's by
        default).
    """
    if pod_environment is not None:
        pod_environment.validate()
        job = replace(job, spark_conf={**job.spark_conf, **pod_environment.spark_conf()})
    if s3a.names_object_store(arguments):  # the S3A settings that are not secret; the keys are the pods'
        job = replace(job, spark_conf={**job.spark_conf, **s3a.hadoop_conf()})
    job.validate()
    require(is_dns_1035_label(name, MAX_NAME_LENGTH),
            f"metadata.name {name!r} must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters")
    pod_labels = dict(labels or {})
    spec = {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": job.image,
        "imagePullPolicy": "IfNotPresent",
        "mainApplicationFile": image_contract.local_uri(job.main_application_file),
        "arguments": [str(a) for a in arguments],
        "sparkVersion": image_contract.spark_version,
        "sparkConf": dict(job.spark_conf),
        "deps": {
            "pyFiles": [image_contract.local_uri(p) for p in job.py_files],
            **({"jars": list(job.jars)} if job.jars else {}),
        },
        **(job.batch_scheduler.as_spec() if job.batch_scheduler is not None else {}),
        "restartPolicy": job.restart_policy.as_spec(),
        "driver": {
            **job.driver.as_spec(),
            "serviceAccount": job.service_account,
            "labels": dict(pod_labels),
            "podSecurityContext": pod_security_context(image_contract),
            "securityContext": container_security_context(image_contract),
        },
        "executor": {
            **job.executor.as_spec(),
            "instances": job.executor_instances,
            "labels": dict(pod_labels),
            "podSecurityContext": pod_security_context(image_contract),
            "securityContext": container_security_context(image_contract),
        },
        "monitoring": monitoring(image_contract),
        "timeToLiveSeconds": job.time_to_live_seconds,
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
