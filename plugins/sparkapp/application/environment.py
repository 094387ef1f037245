"""The deployment's settings of the driver and executor pods, read from the submitting worker's
environment (deploy/ sets them; unset on one machine, where there are no pods)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkapp.application.names import is_object_name, require

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

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
        require((self.data_claim is None) == (self.data_mount is None),
                f"${DATA_CLAIM_ENV} and ${DATA_MOUNT_ENV} go together (the claim and where it is mounted), "
                f"got claim {self.data_claim!r} and mount {self.data_mount!r}")
        for what, name in [("data claim", self.data_claim), *(("env Secret", n) for n in self.env_secrets)]:
            require(name is None or is_object_name(name),
                    f"the {what} {name!r} must be a Kubernetes object name (lowercase letters, digits, "
                    f"'-' and '.')")
        require(self.data_mount is None or self.data_mount.startswith("/"),
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
