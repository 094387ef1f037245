"""The typed description of a Spark job and its rendering into a ``SparkApplication`` manifest.

A :class:`SparkJob` says what runs (program, resources, Spark settings); :func:`render_manifest`
turns it, with the run's arguments, into the ``sparkoperator.k8s.io/v1beta2`` object that every
backend executes: the Spark Operator on Kubernetes, or local ``spark-submit`` on one machine.
The manifest is the single description of the job; nothing else says how it runs.

One idea a module:

- :mod:`~sparkapp.application.names`: Kubernetes names and quantities, and the checks built on them;
- :mod:`~sparkapp.application.image`: the job image's contract (:class:`ImageContract`);
- :mod:`~sparkapp.application.resources`: pod resources, GPUs, placement, gang scheduling, profiles;
- :mod:`~sparkapp.application.job`: the job and its profiles;
- :mod:`~sparkapp.application.environment`: the deployment's pod settings (:class:`PodEnvironment`);
- :mod:`~sparkapp.application.rendering`: the manifest, its name and its spec hash.

Every public name is importable from here, as callers always have.
"""

from __future__ import annotations

from sparkapp.application.environment import (
    DATA_CLAIM_ENV,
    DATA_MOUNT_ENV,
    DATA_VOLUME,
    ENV_SECRETS_ENV,
    EVENT_LOG_DIR_ENV,
    PodEnvironment,
)
from sparkapp.application.image import (
    IMAGE_APP_ROOT,
    IMAGE_CONTRACT,
    JMX_EXPORTER_JAR,
    JMX_EXPORTER_VERSION,
    PYTHON_PATH,
    SPARK_UID,
    SPARK_VERSION,
    ImageContract,
)
from sparkapp.application.job import (
    APPLICATION_TTL_SECONDS,
    DEFAULT_PROFILE,
    DENIED_SPARK_CONF,
    RestartPolicy,
    SparkJob,
)
from sparkapp.application.names import (
    MAX_JOB_NAME_LENGTH,
    MAX_NAME_LENGTH,
    SparkApplicationSpecError,
    label_value,
)
from sparkapp.application.rendering import (
    API_VERSION,
    CONTAINER_SECURITY_CONTEXT,
    KIND,
    LINEAGE_CONF_PREFIX,
    METRICS_PORT,
    MONITORING,
    POD_SECURITY_CONTEXT,
    SPEC_HASH_ANNOTATION,
    application_name,
    render_manifest,
    spec_hash,
)
from sparkapp.application.resources import (
    BATCH_SCHEDULERS,
    TAINT_EFFECTS,
    TOLERATION_OPERATORS,
    BatchScheduler,
    Gpu,
    Placement,
    PodResources,
    ResourceProfile,
    Toleration,
)

__all__ = [
    "API_VERSION",
    "APPLICATION_TTL_SECONDS",
    "BATCH_SCHEDULERS",
    "CONTAINER_SECURITY_CONTEXT",
    "DATA_CLAIM_ENV",
    "DATA_MOUNT_ENV",
    "DATA_VOLUME",
    "DEFAULT_PROFILE",
    "DENIED_SPARK_CONF",
    "ENV_SECRETS_ENV",
    "EVENT_LOG_DIR_ENV",
    "IMAGE_APP_ROOT",
    "IMAGE_CONTRACT",
    "JMX_EXPORTER_JAR",
    "JMX_EXPORTER_VERSION",
    "KIND",
    "LINEAGE_CONF_PREFIX",
    "MAX_JOB_NAME_LENGTH",
    "MAX_NAME_LENGTH",
    "METRICS_PORT",
    "MONITORING",
    "POD_SECURITY_CONTEXT",
    "PYTHON_PATH",
    "SPARK_UID",
    "SPARK_VERSION",
    "SPEC_HASH_ANNOTATION",
    "TAINT_EFFECTS",
    "TOLERATION_OPERATORS",
    "BatchScheduler",
    "Gpu",
    "ImageContract",
    "Placement",
    "PodEnvironment",
    "PodResources",
    "ResourceProfile",
    "RestartPolicy",
    "SparkApplicationSpecError",
    "SparkJob",
    "Toleration",
    "application_name",
    "label_value",
    "render_manifest",
    "spec_hash",
]
