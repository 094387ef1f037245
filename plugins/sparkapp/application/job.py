"""A Spark job: the PySpark program, its image, its Spark settings and resources, and its profiles.

A :class:`SparkJob` says what runs; its profiles (:class:`~sparkapp.application.resources.ResourceProfile`)
are other ways to run the same program (e.g. on GPUs). :meth:`SparkJob.validate` checks everything
the Spark Operator and Kubernetes would refuse, so that a bad job fails when it is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sparkapp.application.names import (
    MAX_JOB_NAME_LENGTH,
    SparkApplicationSpecError,
    check,
    is_dns_1035_label,
    is_image_reference,
    is_jar_uri,
    require,
)
from sparkapp.application.resources import BatchScheduler, PodResources, ResourceProfile

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

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

#: The profile a job's own resources make up.
DEFAULT_PROFILE = "cpu"
#: How long the operator keeps a finished application before deleting it (``timeToLiveSeconds``): a
#: day, long after the sensor read its end, so that finished applications do not fill the
#: namespace's quota (``count/sparkapplications``). Driver logs are copied into the task log first.
APPLICATION_TTL_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class RestartPolicy:
    """What the Spark Operator does when a driver fails or its submission does (``restartPolicy``,
    type ``OnFailure``): resubmit it, so many times, so many seconds apart.

    :param on_failure_retries: resubmissions after the driver failed.
    :param on_failure_retry_interval: seconds before each.
    :param on_submission_failure_retries: resubmissions after spark-submit failed (e.g. a pod refused).
    :param on_submission_failure_retry_interval: seconds before each.
    """

    on_failure_retries: int = 2
    on_failure_retry_interval: int = 30
    on_submission_failure_retries: int = 3
    on_submission_failure_retry_interval: int = 60

    def validate(self) -> None:
        for name in ("on_failure_retries", "on_failure_retry_interval", "on_submission_failure_retries",
                     "on_submission_failure_retry_interval"):
            value = getattr(self, name)
            check(f"restart_policy.{name}", value, isinstance(value, int) and not isinstance(value, bool)
                  and value >= (0 if name.endswith("retries") else 1),
                  "must be an integer >= " + ("0" if name.endswith("retries") else "1"))

    def as_spec(self) -> dict:
        return {
            "type": "OnFailure",
            "onFailureRetries": self.on_failure_retries,
            "onFailureRetryInterval": self.on_failure_retry_interval,
            "onSubmissionFailureRetries": self.on_submission_failure_retries,
            "onSubmissionFailureRetryInterval": self.on_submission_failure_retry_interval,
        }


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
    :param restart_policy: resubmission after a failed driver or submission.
    :param time_to_live_seconds: how long a finished application is kept (``timeToLiveSeconds``).
    """

    name: str
    main_application_file: str
    image: str
    # PodResources is frozen: one shared default is safe (ruff cannot see that across modules).
    driver: PodResources = PodResources()  # noqa: RUF009
    executor: PodResources = PodResources()  # noqa: RUF009
    executor_instances: int = 1
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    py_files: Sequence[str] = ()
    service_account: str = "spark"
    jars: Sequence[str] = ()
    batch_scheduler: BatchScheduler | None = None
    profiles: Mapping[str, ResourceProfile] = field(default_factory=dict)
    restart_policy: RestartPolicy = RestartPolicy()
    time_to_live_seconds: int = APPLICATION_TTL_SECONDS

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
        require(name in self.profiles,
                f"job {self.name!r} has no profile {name!r}; its profiles are {self.profile_names}")
        profile = self.profiles[name]
        return replace(self, driver=profile.driver, executor=profile.executor,
                       executor_instances=profile.executor_instances,
                       spark_conf={**self.spark_conf, **profile.spark_conf},
                       image=profile.image if profile.image is not None else self.image,
                       jars=tuple(dict.fromkeys([*self.jars, *profile.jars])),
                       batch_scheduler=profile.batch_scheduler or self.batch_scheduler, profiles={})

    def validate(self) -> None:
        require(is_dns_1035_label(self.name, MAX_JOB_NAME_LENGTH),
                f"job name {self.name!r} must be a DNS-1035 label (lowercase letters, digits and '-', "
                f"starting with a letter) of at most {MAX_JOB_NAME_LENGTH} characters")
        check("image", self.image, is_image_reference(self.image),
              "must be an image reference such as 'ghcr.io/org/spark:1.0'")
        self.driver.validate("driver")
        self.executor.validate("executor")
        check("executor_instances", self.executor_instances, not self.executor_instances < 1, "must be >= 1")
        bad_conf = {k: v for k, v in self.spark_conf.items() if not isinstance(v, str)}
        require(not bad_conf, f"sparkConf values must be strings, got {bad_conf!r}")
        denied = sorted(set(self.spark_conf) & set(DENIED_SPARK_CONF))
        if denied:
            raise SparkApplicationSpecError(f"sparkConf key {denied[0]!r} is rejected by the Spark Operator: "
                                            f"{DENIED_SPARK_CONF[denied[0]]}")
        self._validate_gpu_conf()
        for index, jar in enumerate(self.jars):
            check(f"jars[{index}]", jar, is_jar_uri(jar),
                  "must be the URI of a .jar file with a scheme (local://, https://, s3a://, ...)")
            require(not jar.startswith("http://"),
                    f"jars[{index}] {jar!r} would be downloaded unencrypted and run on every executor: "
                    f"use https://")
        if self.batch_scheduler is not None:
            self.batch_scheduler.validate()
        self.restart_policy.validate()
        ttl = self.time_to_live_seconds
        check("time_to_live_seconds", ttl, isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 1,
              "must be an integer >= 1")

    def _validate_gpu_conf(self) -> None:
        # The pod's GPUs (the operator's `gpu` field) and Spark's resource request must agree, or the
        # executor asks Kubernetes for one number of GPUs and schedules tasks on another.
        gpu = self.executor.gpu
        amount = self.spark_conf.get("spark.executor.resource.gpu.amount")
        vendor = self.spark_conf.get("spark.executor.resource.gpu.vendor")
        if gpu is None:
            require(amount is None,
                    f"sparkConf spark.executor.resource.gpu.amount is {amount!r} but the executor has no "
                    f"gpu: set executor.gpu (e.g. Gpu(name='nvidia.com/gpu', quantity={amount}))")
            return
        require(amount is None or amount == str(gpu.quantity),
                f"executor.gpu.quantity is {gpu.quantity} but sparkConf spark.executor.resource.gpu.amount "
                f"is {amount!r}: they must be equal")
        expected_vendor = gpu.name.rsplit("/", 1)[0]
        require(vendor is None or "/" not in gpu.name or vendor == expected_vendor,
                f"executor.gpu.name is {gpu.name!r} but sparkConf spark.executor.resource.gpu.vendor is "
                f"{vendor!r}: the vendor must be the resource's domain, {expected_vendor!r}")
