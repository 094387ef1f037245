from __future__ import annotations

import importlib.metadata
from datetime import datetime, timezone

import pytest

from sparkapp.application import (
    SPARK_VERSION,
    SPEC_HASH_ANNOTATION,
    Gpu,
    PodResources,
    SparkApplicationSpecError,
    SparkJob,
    application_name,
    label_value,
    render_manifest,
    spec_hash,
)

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
START = datetime(2013, 6, 30, tzinfo=timezone.utc)
#: Pod Security Standard "restricted", as Kubernetes' docs list it, for the spark user (uid 185).
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 185, "runAsGroup": 185, "fsGroup": 185,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True, "runAsUser": 185, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED = {"podSecurityContext": RESTRICTED_POD, "securityContext": RESTRICTED_CONTAINER}


def test_render_manifest_is_the_full_spark_application():
    manifest = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev",
                               arguments=["--day", "2013-06-30", 7], labels={"team": "ml"},
                               annotations={"run": "manual__1"})
    assert manifest["metadata"] == {
        "name": "features-20130630-abcdef12", "namespace": "ml-dev", "labels": {"team": "ml"},
        "annotations": {"run": "manual__1", SPEC_HASH_ANNOTATION: spec_hash(manifest["spec"])},
    }
    assert manifest == {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": manifest["metadata"],
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": "registry.example/spark-jobs:1.0",
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": "local:///opt/spark/work-dir/spark_jobs/features.py",
            "arguments": ["--day", "2013-06-30", "7"],
            "sparkVersion": "4.3.0",
            "sparkConf": {"spark.sql.shuffle.partitions": "8"},
            "deps": {"pyFiles": ["local:///opt/spark/work-dir/deps/lib.zip"]},
            "restartPolicy": {
                "type": "OnFailure",
                "onFailureRetries": 2,
                "onFailureRetryInterval": 30,
                "onSubmissionFailureRetries": 3,
                "onSubmissionFailureRetryInterval": 60,
            },
            # No core_limit given: the limit is the cores, so every pod has one.
            "driver": {"cores": 1, "memory": "1g", "coreRequest": "500m", "coreLimit": "1",
                       "serviceAccount": "spark", "labels": {"team": "ml"},
                       "podSecurityContext": RESTRICTED_POD, "securityContext": RESTRICTED_CONTAINER},
            "executor": {"cores": 2, "memory": "3g", "coreLimit": "2",
                         "gpu": {"name": "nvidia.com/gpu", "quantity": 1}, "instances": 4,
                         "labels": {"team": "ml"},
                         "podSecurityContext": RESTRICTED_POD, "securityContext": RESTRICTED_CONTAINER},
            "monitoring": {
                "exposeDriverMetrics": True,
                "exposeExecutorMetrics": True,
                "prometheus": {"jmxExporterJar": "/opt/spark/monitoring/jmx_prometheus_javaagent-1.0.1.jar",
                               "port": 8090},
            },
            "timeToLiveSeconds": 86400,
        },
    }


def test_spark_version_matches_the_pinned_pyspark():
    assert importlib.metadata.version("pyspark") == SPARK_VERSION


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (SparkJob(name="Features", main_application_file="x.py", image="i"), "job name 'Features'"),
        (SparkJob(name="1features", main_application_file="x.py", image="i"), "job name '1features'"),
        (SparkJob(name="f" * 46, main_application_file="x.py", image="i"), "at most 45 characters"),
        (SparkJob(name="f", main_application_file="x.py", image="i", driver=PodResources(cores=0)),
         "driver.cores must be an integer >= 1, got 0"),
        (SparkJob(name="f", main_application_file="x.py", image="i", executor=PodResources(memory="2GB")),
         "executor.memory must be a positive size with a unit k, m, g or t (e.g. '2g'), got '2GB'"),
        (SparkJob(name="f", main_application_file="x.py", image="i", executor_instances=0),
         "executor_instances must be >= 1, got 0"),
        (SparkJob(name="f", main_application_file="x.py", image="i", spark_conf={"spark.x": 1}),
         "sparkConf values must be strings, got {'spark.x': 1}"),
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
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  spark_conf={"spark.kubernetes.container.image": "other:1"}),
         "sparkConf key 'spark.kubernetes.container.image' is rejected by the Spark Operator: "
         "use SparkJob.image (spec.image)"),
        (SparkJob(name="f", main_application_file="x.py", image="i", spark_conf={"spark.master": "local"}),
         "sparkConf key 'spark.master' is rejected by the Spark Operator: the operator sets the master"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  spark_conf={"spark.kubernetes.namespace": "other"}),
         "sparkConf key 'spark.kubernetes.namespace' is rejected"),
        (SparkJob(name="f", main_application_file="x.py", image="i",
                  spark_conf={"spark.kubernetes.authenticate.driver.serviceAccountName": "admin"}),
         "sparkConf key 'spark.kubernetes.authenticate.driver.serviceAccountName' is rejected"),
    ],
)
def test_bad_job_fails_at_render_time_naming_the_field(job, message):
    with pytest.raises(SparkApplicationSpecError) as raised:
        render_manifest(job, name="f-20130630-abcdef12", namespace="ml-dev")
    assert message in str(raised.value)


@pytest.mark.parametrize("name", ["Features-1", "-features", "features-", "f" * 64, "features_1"])
def test_bad_application_name_is_refused(name):
    with pytest.raises(SparkApplicationSpecError, match=r"metadata\.name"):
        render_manifest(JOB, name=name, namespace="ml-dev")


def test_application_name_is_deterministic_per_task_interval_and_map_index():
    name = application_name("features", dag_id="d", task_id="t", data_interval_start=START)
    assert name == application_name("features", dag_id="d", task_id="t", data_interval_start=START)
    assert name.startswith("features-20130630-") and len(name) == len("features-20130630-") + 8
    others = {
        application_name("features", dag_id="d2", task_id="t", data_interval_start=START),
        application_name("features", dag_id="d", task_id="t2", data_interval_start=START),
        application_name("features", dag_id="d", task_id="t", data_interval_start=START, map_index=0),
        application_name("features", dag_id="d", task_id="t",
                         data_interval_start=datetime(2013, 6, 30, 1, tzinfo=timezone.utc)),
    }
    assert name not in others and len(others) == 4


def test_longest_job_name_gives_a_valid_application_name():
    job = SparkJob(name="f" * 45, main_application_file="x.py", image="i")
    name = application_name(job.name, dag_id="d", task_id="t", data_interval_start=START)
    assert len(name) == 63
    assert render_manifest(job, name=name, namespace="ml-dev")["metadata"]["name"] == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("flight_delay_retraining", "flight_delay_retraining"),
        ("manual__2013-07-01T00:00:00+00:00", "manual__2013-07-01T00_00_00_00_00"),
        ("_x" + "a" * 70, "x" + "a" * 62),
    ],
)
def test_label_value_is_kubernetes_safe(value, expected):
    assert label_value(value) == expected


def test_spec_hash_ignores_key_order_and_sees_every_change():
    spec = render_manifest(JOB, name="f-20130630-abcdef12", namespace="ml-dev")["spec"]
    reordered = dict(reversed(list(spec.items())))
    assert spec_hash(reordered) == spec_hash(spec)
    changed = render_manifest(JOB, name="f-20130630-abcdef12", namespace="ml-dev", arguments=["x"])["spec"]
    assert spec_hash(changed) != spec_hash(spec)


def test_profiles_replace_resources_and_add_spark_settings():
    from sparkapp.application import ResourceProfile

    gpu = ResourceProfile(driver=PodResources(cores=1, memory="2g"),
                          executor=PodResources(cores=4, memory="8g", gpu=Gpu(name="nvidia.com/gpu")),
                          executor_instances=3, spark_conf={"spark.task.resource.gpu.amount": "1"})
    job = SparkJob(name="train", main_application_file="x.py", image="i", spark_conf={"a": "1"},
                   profiles={"gpu": gpu})
    assert job.profile_names == ["cpu", "gpu"]
    assert job.with_profile("cpu") is job
    on_gpu = job.with_profile("gpu")
    assert (on_gpu.executor, on_gpu.executor_instances, dict(on_gpu.spark_conf)) == (
        gpu.executor, 3, {"a": "1", "spark.task.resource.gpu.amount": "1"})
    expected = r"job 'train' has no profile 'tpu'; its profiles are \['cpu', 'gpu'\]"
    with pytest.raises(SparkApplicationSpecError, match=expected):
        job.with_profile("tpu")


def job_with(**fields) -> SparkJob:
    return SparkJob(**{"name": "f", "main_application_file": "x.py", "image": "i", **fields})


def executor_placed(**placement) -> SparkJob:
    from sparkapp.application import Placement

    return job_with(executor=PodResources(placement=Placement(**placement)))


def driver_placed(**placement) -> SparkJob:
    from sparkapp.application import Placement

    return job_with(driver=PodResources(placement=Placement(**placement)))


def tolerating(**toleration) -> SparkJob:
    from sparkapp.application import Toleration

    return executor_placed(tolerations=(Toleration(**toleration),))


def gang(**scheduler) -> SparkJob:
    from sparkapp.application import BatchScheduler

    return job_with(batch_scheduler=BatchScheduler(**scheduler))


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (job_with(image=""), "image must be an image reference such as 'ghcr.io/org/spark:1.0', got ''"),
        (job_with(image="a b:1"), "image must be an image reference such as 'ghcr.io/org/spark:1.0', got "
                                  "'a b:1'"),
        (job_with(executor=PodResources(memory_overhead="6GB")),
         "executor.memory_overhead must be a positive size with a unit k, m, g or t (e.g. '2g'), got '6GB'"),
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
        (job_with(jars=("rapids-4-spark_2.13-26.10.0.jar",)),
         "jars[0] must be the URI of a .jar file with a scheme (local://, https://, s3a://, ...), "
         "got 'rapids-4-spark_2.13-26.10.0.jar'"),
        (job_with(jars=("local:///opt/a.jar", "https://repo.example/lib.zip")),
         "jars[1] must be the URI of a .jar file"),
        (job_with(jars=("http://repo.example/lib.jar",)),
         "jars[0] 'http://repo.example/lib.jar' would be downloaded unencrypted and run on every executor: "
         "use https://"),
        (job_with(spark_conf={"spark.executor.resource.gpu.amount": "1"}),
         "sparkConf spark.executor.resource.gpu.amount is '1' but the executor has no gpu: set executor.gpu "
         "(e.g. Gpu(name='nvidia.com/gpu', quantity=1))"),
        (job_with(executor=PodResources(gpu=Gpu(name="nvidia.com/gpu", quantity=1)),
                  spark_conf={"spark.executor.resource.gpu.amount": "2"}),
         "executor.gpu.quantity is 1 but sparkConf spark.executor.resource.gpu.amount is '2': they must be "
         "equal"),
        (job_with(executor=PodResources(gpu=Gpu(name="nvidia.com/gpu", quantity=1)),
                  spark_conf={"spark.executor.resource.gpu.vendor": "amd.com"}),
         "executor.gpu.name is 'nvidia.com/gpu' but sparkConf spark.executor.resource.gpu.vendor is "
         "'amd.com': the vendor must be the resource's domain, 'nvidia.com'"),
    ],
)
def test_bad_image_placement_scheduling_jars_or_gpu_settings_fail_naming_the_field(job, message):
    with pytest.raises(SparkApplicationSpecError) as raised:
        render_manifest(job, name="f-20130630-abcdef12", namespace="ml-dev")
    assert message in str(raised.value)


def test_placement_scheduling_and_jars_render_into_the_crd_fields():
    from sparkapp.application import BatchScheduler, Placement, Toleration

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
    from sparkapp.application import BatchScheduler

    spec = render_manifest(job_with(batch_scheduler=BatchScheduler(name="yunikorn")),
                           name="f-20130630-abcdef12", namespace="ml-dev")["spec"]
    assert spec["batchScheduler"] == "yunikorn" and "batchSchedulerOptions" not in spec


def test_a_profile_replaces_image_and_scheduler_and_adds_its_jars_after_the_jobs():
    from sparkapp.application import BatchScheduler, ResourceProfile

    volcano, yunikorn = BatchScheduler(name="volcano", queue="gpu"), BatchScheduler(name="yunikorn")
    job = SparkJob(name="train", main_application_file="x.py", image="cpu:1", jars=("local:///opt/a.jar",),
                   batch_scheduler=yunikorn, profiles={
                       "gpu": ResourceProfile(driver=PodResources(), executor=PodResources(), image="gpu:1",
                                              jars=("local:///opt/a.jar", "https://repo.example/b.jar"),
                                              batch_scheduler=volcano),
                       "plain": ResourceProfile(driver=PodResources(), executor=PodResources()),
                   })
    on_gpu, plain = job.with_profile("gpu"), job.with_profile("plain")
    assert (on_gpu.image, on_gpu.jars, on_gpu.batch_scheduler) == (
        "gpu:1", ("local:///opt/a.jar", "https://repo.example/b.jar"), volcano)
    assert (plain.image, plain.jars, plain.batch_scheduler) == ("cpu:1", ("local:///opt/a.jar",), yunikorn)
    rendered = render_manifest(on_gpu, name="train-20130630-abcdef12", namespace="ml-dev")
    assert rendered["spec"]["image"] == "gpu:1"


def test_a_job_without_optional_fields_renders_the_same_spec_hash():
    # Same spec, same hash: a retry adopts the application an earlier try created. The hash changed
    # once on purpose (from d47979f28c85159b), when every application got the restricted security
    # context, Prometheus monitoring, a CPU limit and a time to live; an application still running
    # from before that is refused with SparkApplicationConflict, not adopted.
    spec = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev")["spec"]
    assert not {"batchScheduler", "batchSchedulerOptions", "nodeSelector"} & set(spec)
    assert spec["deps"] == {"pyFiles": ["local:///opt/spark/work-dir/deps/lib.zip"]}
    assert spec_hash(spec) == "6e3642b35cbe9ad2"  # pragma: allowlist secret (a spec hash, not a key)


def test_pod_environment_from_the_workers_environment_reaches_driver_and_executors():
    from sparkapp.application import PodEnvironment

    environment = PodEnvironment.from_environ({
        "SPARKAPP_DATA_CLAIM": "flight-delays-data", "SPARKAPP_DATA_MOUNT": "/data",
        # pragma: allowlist nextline secret (names of Secrets)
        "SPARKAPP_ENV_SECRETS": "flight-delays-mlflow, flight-delays-object-storage",
        "SPARK_EVENT_LOG_DIR": "file:///data/spark-events",
    })
    spec = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev",
                           pod_environment=environment)["spec"]
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "flight-delays-data"}}]
    for role in ("driver", "executor"):
        assert spec[role]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
        assert spec[role]["envFrom"] == [{"secretRef": {"name": "flight-delays-mlflow"}},
                                         {"secretRef": {"name": "flight-delays-object-storage"}}]
    assert spec["sparkConf"] == {"spark.sql.shuffle.partitions": "8", "spark.eventLog.enabled": "true",
                                 "spark.eventLog.dir": "file:///data/spark-events"}


def test_an_unset_pod_environment_renders_nothing_of_it():
    from sparkapp.application import PodEnvironment

    plain = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev")
    assert render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev",
                           pod_environment=PodEnvironment.from_environ({})) == plain


@pytest.mark.parametrize(("environ", "message"), [
    ({"SPARKAPP_DATA_CLAIM": "flight-delays-data"},
     r"\$SPARKAPP_DATA_CLAIM and \$SPARKAPP_DATA_MOUNT go together .* "
     r"got claim 'flight-delays-data' and mount None"),
    ({"SPARKAPP_DATA_CLAIM": "Data_Volume", "SPARKAPP_DATA_MOUNT": "/data"},
     r"the data claim 'Data_Volume' must be a Kubernetes object name"),
    ({"SPARKAPP_DATA_CLAIM": "data", "SPARKAPP_DATA_MOUNT": "data"},
     r"\$SPARKAPP_DATA_MOUNT must be an absolute path, got 'data'"),
    ({"SPARKAPP_ENV_SECRETS": "flight-delays-mlflow,MLflow Secret"},  # pragma: allowlist secret
     r"the env Secret 'MLflow Secret' must be a Kubernetes object name"),
])
def test_a_bad_pod_environment_is_refused_naming_the_variable(environ, message):
    from sparkapp.application import PodEnvironment

    with pytest.raises(SparkApplicationSpecError, match=message):
        PodEnvironment.from_environ(environ)
