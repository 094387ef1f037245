"""The job: what it refuses (its name, image, Spark settings, jars, GPU settings), naming the field,
and its profiles."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sparkapp.application import (
    BatchScheduler,
    Gpu,
    PodResources,
    ResourceProfile,
    RestartPolicy,
    SparkApplicationSpecError,
    SparkJob,
    render_manifest,
)
from tests.plugins.sparkapp.application.examples import JOB, job_with


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (SparkJob(name="Features", main_application_file="x.py", image="i"), "job name 'Features'"),
        (SparkJob(name="1features", main_application_file="x.py", image="i"), "job name '1features'"),
        (SparkJob(name="f" * 46, main_application_file="x.py", image="i"), "at most 45 characters"),
        (SparkJob(name="f", main_application_file="x.py", image="i", executor_instances=0),
         "executor_instances must be >= 1, got 0"),
        (SparkJob(name="f", main_application_file="x.py", image="i", spark_conf={"spark.x": 1}),
         "sparkConf values must be strings, got {'spark.x': 1}"),
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


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (job_with(image=""), "image must be an image reference such as 'ghcr.io/org/spark:1.0', got ''"),
        (job_with(image="a b:1"), "image must be an image reference such as 'ghcr.io/org/spark:1.0', got "
                                  "'a b:1'"),
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
def test_bad_image_jars_or_gpu_settings_fail_naming_the_field(job, message):
    with pytest.raises(SparkApplicationSpecError) as raised:
        render_manifest(job, name="f-20130630-abcdef12", namespace="ml-dev")
    assert message in str(raised.value)


def test_profiles_replace_resources_and_add_spark_settings():
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


def test_a_profile_replaces_image_and_scheduler_and_adds_its_jars_after_the_jobs():
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



def test_restart_policy_and_ttl_render_into_the_spec_and_are_validated():
    job = replace(JOB, restart_policy=RestartPolicy(on_failure_retries=1, on_failure_retry_interval=2,
                                                    on_submission_failure_retries=0,
                                                    on_submission_failure_retry_interval=5),
                  time_to_live_seconds=30)
    spec = render_manifest(job, name="features-20130630-abcdef12", namespace="ml-dev")["spec"]
    assert spec["restartPolicy"] == {"type": "OnFailure", "onFailureRetries": 1, "onFailureRetryInterval": 2,
                                     "onSubmissionFailureRetries": 0, "onSubmissionFailureRetryInterval": 5}
    assert spec["timeToLiveSeconds"] == 30
    default = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev")["spec"]
    assert (default["restartPolicy"]["onFailureRetries"], default["timeToLiveSeconds"]) == (2, 86400)
    with pytest.raises(SparkApplicationSpecError, match=r"restart_policy\.on_failure_retry_interval"):
        replace(JOB, restart_policy=RestartPolicy(on_failure_retry_interval=0)).validate()
    with pytest.raises(SparkApplicationSpecError, match="time_to_live_seconds"):
        replace(JOB, time_to_live_seconds=0).validate()
