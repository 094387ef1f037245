"""Rendering a job into the SparkApplication manifest: the whole object, its name, its spec hash, and
the job image it points into."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sparkapp.application import (
    SPEC_HASH_ANNOTATION,
    ImageContract,
    SparkApplicationSpecError,
    SparkJob,
    application_name,
    render_manifest,
    spec_hash,
)
from tests.plugins.sparkapp.application.examples import JOB, RESTRICTED_CONTAINER, RESTRICTED_POD

START = datetime(2013, 6, 30, tzinfo=timezone.utc)


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


def test_spec_hash_ignores_key_order_and_sees_every_change():
    spec = render_manifest(JOB, name="f-20130630-abcdef12", namespace="ml-dev")["spec"]
    reordered = dict(reversed(list(spec.items())))
    assert spec_hash(reordered) == spec_hash(spec)
    changed = render_manifest(JOB, name="f-20130630-abcdef12", namespace="ml-dev", arguments=["x"])["spec"]
    assert spec_hash(changed) != spec_hash(spec)


def test_a_job_without_optional_fields_renders_the_same_spec_hash():
    # Same spec, same hash: a retry adopts the application an earlier try created. The hash changed
    # once on purpose (from d47979f28c85159b), when every application got the restricted security
    # context, Prometheus monitoring, a CPU limit and a time to live; an application still running
    # from before that is refused with SparkApplicationConflict, not adopted.
    spec = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev")["spec"]
    assert not {"batchScheduler", "batchSchedulerOptions", "nodeSelector"} & set(spec)
    assert spec["deps"] == {"pyFiles": ["local:///opt/spark/work-dir/deps/lib.zip"]}
    assert spec_hash(spec) == "6e3642b35cbe9ad2"  # pragma: allowlist secret (a spec hash, not a key)


def test_another_image_contract_renders_its_paths_version_user_and_exporter():
    image = ImageContract(app_root="/app", python_path=(".",), spark_version="4.2.0", spark_uid=1001,
                          jmx_exporter_version="1.1.0")
    spec = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev",
                           image_contract=image)["spec"]
    assert (spec["mainApplicationFile"], spec["deps"]["pyFiles"], spec["sparkVersion"]) == (
        "local:///app/spark_jobs/features.py", ["local:///app/deps/lib.zip"], "4.2.0")
    for role in ("driver", "executor"):
        assert spec[role]["podSecurityContext"] == {**RESTRICTED_POD, "runAsUser": 1001, "runAsGroup": 1001,
                                                    "fsGroup": 1001}
        assert spec[role]["securityContext"] == {**RESTRICTED_CONTAINER, "runAsUser": 1001}
    assert spec["monitoring"]["prometheus"] == {
        "jmxExporterJar": "/opt/spark/monitoring/jmx_prometheus_javaagent-1.1.0.jar", "port": 8090}
    # The default contract is this project's image: the same manifest as without the argument.
    assert render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev") == render_manifest(
        JOB, name="features-20130630-abcdef12", namespace="ml-dev", image_contract=ImageContract())


def test_rendered_security_contexts_are_copies():
    first = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev")["spec"]
    first["driver"]["podSecurityContext"]["runAsUser"] = 0
    first["executor"]["securityContext"]["capabilities"]["drop"].clear()
    first["monitoring"]["prometheus"]["port"] = 1
    again = render_manifest(JOB, name="features-20130630-abcdef12", namespace="ml-dev")["spec"]
    assert (again["driver"]["podSecurityContext"], again["executor"]["securityContext"]) == (
        RESTRICTED_POD, RESTRICTED_CONTAINER)
    assert again["monitoring"]["prometheus"]["port"] == 8090
