"""Rendering against the released Spark Operator CRD (``../shared/crds``): every SparkApplication the
DAG renders, each profile and option of the model, and the deployment's pod settings validate against
its schema, with no field it does not declare."""

from __future__ import annotations

from datetime import date

import jsonschema
import pytest


def rendered_manifests(conf: dict | None = None) -> list[dict]:
    from devtools.manifests import render_run

    return list(render_run(date(2013, 6, 30), conf).values())


@pytest.mark.parametrize(("engine", "jobs"), [
    ("pandas", ["features-20130630", "train-20130630"]),
    ("spark", ["features-20130630", "train-20130630", "validate-20130630"]),
])
def test_dag_manifests_validate_against_the_crd(crd_schema, engine, jobs):
    manifests = rendered_manifests({"validation_engine": engine})
    for manifest in manifests:
        jsonschema.validate(manifest, crd_schema)
    assert sorted(m["metadata"]["name"].rsplit("-", 1)[0] for m in manifests) == jobs


def a_features_manifest() -> dict:
    from flight_delays.jobs import FEATURES_JOB
    from sparkapp.application import render_manifest

    return render_manifest(FEATURES_JOB, name="features-20130630-abcdef12", namespace="ml-dev")


def undeclared_fields(instance, schema: dict, path: str = "") -> list[str]:
    """Paths in ``instance`` that ``schema`` does not declare.

    The CRD's objects do not forbid unknown fields (no ``additionalProperties: false``), so
    ``jsonschema`` passes a misspelt field; the API server would prune it silently.
    """
    if isinstance(instance, dict) and "properties" in schema:
        found = []
        for key, value in instance.items():
            if key in schema["properties"]:
                found += undeclared_fields(value, schema["properties"][key], f"{path}.{key}")
            elif not (schema.get("additionalProperties")
                      or schema.get("x-kubernetes-preserve-unknown-fields")):
                found.append(f"{path}.{key}")
        return found
    if isinstance(instance, list) and "items" in schema:
        return [found for i, item in enumerate(instance)
                for found in undeclared_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def test_undeclared_fields_finds_a_misspelt_field(crd_schema):
    manifest = a_features_manifest()
    manifest["spec"]["executor"]["priorityClass"] = "ml-training"
    manifest["spec"]["executor"]["tolerations"] = [{"key": "a", "operator": "Exists", "efect": "NoSchedule"}]
    jsonschema.validate(manifest, crd_schema)  # the schema alone lets both through
    assert undeclared_fields(manifest, crd_schema) == [".spec.executor.priorityClass",
                                                       ".spec.executor.tolerations[0].efect"]


@pytest.mark.parametrize("conf", [None, {"device": "cuda"}, {"window_days": 120, "history_days": 60}])
def test_every_profile_of_every_job_validates_against_the_crd(crd_schema, conf):
    from devtools.manifests import render_run

    manifests = render_run(date(2013, 6, 30), conf, all_profiles=True)
    assert sorted(manifests) == ["submit_features.cpu", "submit_training.cpu", "submit_training.gpu",
                                 "submit_validation.cpu"]
    for manifest in manifests.values():
        jsonschema.validate(manifest, crd_schema)
        assert undeclared_fields(manifest, crd_schema) == []
    gpu = manifests["submit_training.gpu"]["spec"]
    assert gpu["executor"]["gpu"] == {"name": "nvidia.com/gpu", "quantity": 1}
    assert gpu["sparkConf"]["spark.executor.resource.gpu.amount"] == "1"
    assert "gpu" not in manifests["submit_training.cpu"]["spec"]["executor"]
    assert gpu["sparkConf"]["spark.plugins"] == "com.nvidia.spark.SQLPlugin"
    assert gpu["deps"]["jars"] == ["local:///opt/spark/rapids/rapids-4-spark_2.13-26.10.0.jar"]
    assert (gpu["executor"]["nodeSelector"], gpu["executor"]["tolerations"]) == (
        {"nvidia.com/gpu.present": "true"},
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    assert gpu["driver"]["priorityClassName"] == gpu["executor"]["priorityClassName"] == "ml-training"
    assert "nodeSelector" not in gpu["driver"]  # the driver needs no GPU node
    for key, manifest in manifests.items():
        if key != "submit_training.gpu":
            spec = manifest["spec"]
            assert "jars" not in spec["deps"] and "batchScheduler" not in spec, key
            assert not {"nodeSelector", "tolerations", "priorityClassName"} & set(spec["executor"]), key


@pytest.mark.parametrize("scheduler", [
    {"name": "volcano", "queue": "gpu-training", "priority_class_name": "ml-training",
     "resources": {"nvidia.com/gpu": "2", "cpu": "9", "memory": "34Gi"}},
    {"name": "yunikorn", "queue": "root.gpu"},
])
def test_gang_scheduled_gpu_training_validates_against_the_crd(crd_schema, scheduler):
    from dataclasses import replace

    from flight_delays.jobs import GPU_TRAINING, TRAIN_JOB
    from sparkapp.application import BatchScheduler, render_manifest

    profile = replace(GPU_TRAINING, batch_scheduler=BatchScheduler(**scheduler))
    job = replace(TRAIN_JOB, profiles={"gpu": profile}).with_profile("gpu")
    manifest = render_manifest(job, name="train-20130630-abcdef12", namespace="ml-prod")
    jsonschema.validate(manifest, crd_schema)
    assert undeclared_fields(manifest, crd_schema) == []
    assert manifest["spec"]["batchScheduler"] == scheduler["name"]


@pytest.mark.parametrize(("quantity", "crd_accepts", "we_accept"), [
    ("2", True, True), ("500m", True, True), ("16Gi", True, True), ("1.5", True, True), ("1e3", True, True),
    ("two", False, False), ("2 Gi", False, False), ("16GiB", False, False),
    ("-2", True, False),  # the CRD's pattern allows a sign; a negative minimum makes no sense
])
def test_batch_scheduler_resources_are_checked_like_the_crd_checks_them(crd_schema, quantity, crd_accepts,
                                                                          we_accept):
    from sparkapp.application import BatchScheduler, SparkApplicationSpecError

    manifest = a_features_manifest()
    manifest["spec"].update(batchScheduler="volcano",
                            batchSchedulerOptions={"resources": {"nvidia.com/gpu": quantity}})
    try:
        jsonschema.validate(manifest, crd_schema)
    except jsonschema.ValidationError:
        crd_accepted = False
    else:
        crd_accepted = True
    try:
        BatchScheduler(name="volcano", resources={"nvidia.com/gpu": quantity}).validate()
    except SparkApplicationSpecError:
        accepted = False
    else:
        accepted = True
    assert (crd_accepted, accepted) == (crd_accepts, we_accept)


def test_the_crd_schema_catches_a_wrong_field(crd_schema):
    manifest = rendered_manifests()[0]
    manifest["spec"]["executor"]["instances"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="'two' is not of type 'integer'"):
        jsonschema.validate(manifest, crd_schema)
    manifest["spec"]["executor"]["instances"] = 2
    manifest["spec"]["mode"] = "client-ish"
    with pytest.raises(jsonschema.ValidationError, match="'client-ish' is not one of"):
        jsonschema.validate(manifest, crd_schema)


def test_gpu_and_fractional_cpu_fields_validate_against_the_crd(crd_schema):
    from sparkapp.application import Gpu, PodResources, SparkJob, render_manifest

    job = SparkJob(name="train", main_application_file="spark_jobs/train.py", image="i:1",
                   driver=PodResources(cores=1, memory="2g", core_request="500m", core_limit="1"),
                   executor=PodResources(cores=4, memory="8g", core_request="3.5",
                                         gpu=Gpu(name="nvidia.com/gpu", quantity=1)))
    manifest = render_manifest(job, name="train-20130630-abcdef12", namespace="ml-prod",
                               annotations={"airflow.apache.org/run-id": "scheduled__2013-06-30"})
    jsonschema.validate(manifest, crd_schema)
    assert manifest["spec"]["executor"]["gpu"] == {"name": "nvidia.com/gpu", "quantity": 1}


def restricted_violations(manifest: dict) -> list[str]:
    """What keeps the driver or executor pods of ``manifest`` from Pod Security "restricted", or from
    having CPU and memory limits (Spark sets the memory limit to memory + overhead; the CPU limit is
    ``coreLimit``)."""
    found = []
    for role in ("driver", "executor"):
        pod = manifest["spec"][role]
        pod_context, container = pod.get("podSecurityContext", {}), pod.get("securityContext", {})
        if not (pod_context.get("runAsNonRoot") and container.get("runAsNonRoot")):
            found.append(f"{role}: runAsNonRoot is not set")
        if pod_context.get("runAsUser") == 0 or container.get("runAsUser") == 0:
            found.append(f"{role}: runs as root")
        if container.get("allowPrivilegeEscalation") is not False:
            found.append(f"{role}: allowPrivilegeEscalation is not false")
        if container.get("capabilities", {}).get("drop") != ["ALL"]:
            found.append(f"{role}: capabilities are not dropped")
        if container.get("seccompProfile", pod_context.get("seccompProfile")) != {"type": "RuntimeDefault"}:
            found.append(f"{role}: no RuntimeDefault seccomp profile")
        if container.get("privileged"):
            found.append(f"{role}: privileged")
        for limit in ("cores", "coreLimit", "memory"):
            if limit not in pod:
                found.append(f"{role}: no {limit}")
    return found


def test_every_application_meets_pod_security_restricted_with_limits_and_metrics():
    from devtools.manifests import render_run

    manifests = render_run(date(2013, 6, 30), {"validation_engine": "spark"}, all_profiles=True)
    assert len(manifests) == 4
    for key, manifest in manifests.items():
        assert restricted_violations(manifest) == [], key
        assert len(manifest["metadata"]["name"]) <= 63, key
        assert manifest["spec"]["monitoring"]["exposeDriverMetrics"] is True, key
        assert manifest["spec"]["monitoring"]["exposeExecutorMetrics"] is True, key


def test_restricted_violations_names_each_gap():
    manifest = a_features_manifest()
    executor = manifest["spec"]["executor"]
    executor["securityContext"] = {**executor["securityContext"], "allowPrivilegeEscalation": True,
                                   "privileged": True}
    del executor["coreLimit"]
    del manifest["spec"]["driver"]["podSecurityContext"]
    assert restricted_violations(manifest) == [
        "driver: runAsNonRoot is not set",
        "executor: allowPrivilegeEscalation is not false",
        "executor: privileged",
        "executor: no coreLimit",
    ]


def test_the_deployments_pod_environment_validates_against_the_crd(crd_schema, monkeypatch):
    """What deploy/ sets in the workers' environment (flight-delays-settings) renders CRD fields."""
    from devtools.manifests import render_run

    monkeypatch.setenv("SPARKAPP_DATA_CLAIM", "flight-delays-data")
    monkeypatch.setenv("SPARKAPP_DATA_MOUNT", "/data")
    monkeypatch.setenv("SPARKAPP_ENV_SECRETS", "flight-delays-mlflow,flight-delays-object-storage")
    monkeypatch.setenv("SPARK_EVENT_LOG_DIR", "file:///data/spark-events")
    manifests = render_run(date(2013, 6, 30), {"validation_engine": "spark"}, all_profiles=True)
    for key, manifest in manifests.items():
        jsonschema.validate(manifest, crd_schema)
        assert undeclared_fields(manifest, crd_schema) == [], key
        assert manifest["spec"]["driver"]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}], key
        assert manifest["spec"]["timeToLiveSeconds"] == 86400
