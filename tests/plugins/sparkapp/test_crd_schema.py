"""Every SparkApplication the DAG renders validates against the released Spark Operator CRD."""

from __future__ import annotations

from datetime import date

import jsonschema
import pytest
import yaml

from tests.conftest import SHARED_DIR

CRD_FILE = SHARED_DIR / "crds" / "sparkoperator.k8s.io_sparkapplications.yaml"


@pytest.fixture(scope="module")
def crd_schema() -> dict:
    crd = yaml.safe_load(CRD_FILE.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta2"]
    return version["schema"]["openAPIV3Schema"]


def rendered_manifests() -> list[dict]:
    from flight_delays.manifests import render_run

    manifests = render_run(date(2013, 6, 30))
    assert sorted(manifests) == ["submit_features", "submit_training"]
    return list(manifests.values())


def test_dag_manifests_validate_against_the_crd(crd_schema):
    manifests = rendered_manifests()
    for manifest in manifests:
        jsonschema.validate(manifest, crd_schema)
    assert sorted(m["metadata"]["name"].rsplit("-", 1)[0] for m in manifests) == [
        "features-20130630", "train-20130630"]


@pytest.mark.parametrize("conf", [None, {"device": "cuda"}, {"window_days": 120, "history_days": 60}])
def test_every_profile_of_every_job_validates_against_the_crd(crd_schema, conf):
    from flight_delays.manifests import render_run

    manifests = render_run(date(2013, 6, 30), conf, all_profiles=True)
    assert sorted(manifests) == ["submit_features.cpu", "submit_training.cpu", "submit_training.gpu"]
    for manifest in manifests.values():
        jsonschema.validate(manifest, crd_schema)
    gpu = manifests["submit_training.gpu"]["spec"]
    assert gpu["executor"]["gpu"] == {"name": "nvidia.com/gpu", "quantity": 1}
    assert gpu["sparkConf"]["spark.executor.resource.gpu.amount"] == "1"
    assert "gpu" not in manifests["submit_training.cpu"]["spec"]["executor"]


def test_the_device_param_picks_the_training_profile():
    from flight_delays.manifests import render_run

    cpu = render_run(date(2013, 6, 30))["submit_training"]["spec"]
    cuda = render_run(date(2013, 6, 30), {"device": "cuda"})["submit_training"]["spec"]
    assert "gpu" not in cpu["executor"] and cuda["executor"]["gpu"]["quantity"] == 1
    assert cuda["arguments"][cuda["arguments"].index("--device") + 1] == "cuda"


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


def test_make_manifests_writes_the_runs_applications(tmp_path, crd_schema):
    from flight_delays.manifests import main

    assert main(["--date", "2013-06-30", "--conf", '{"window_days": 14}', "--out", str(tmp_path)]) == 0
    folder = tmp_path / "2013-06-30"
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    assert written == ["profiles/submit_features.cpu.yaml", "profiles/submit_training.cpu.yaml",
                       "profiles/submit_training.gpu.yaml", "submit_features.yaml", "submit_training.yaml"]
    features = yaml.safe_load((tmp_path / "2013-06-30" / "submit_features.yaml").read_text())
    jsonschema.validate(features, crd_schema)
    arguments = features["spec"]["arguments"]
    assert arguments[arguments.index("--start-date") + 1] == "2013-06-17"  # 14-day window from the conf
    assert arguments[arguments.index("--history-start") + 1] == "2013-06-03"


def test_make_manifests_refuses_a_bad_conf(tmp_path):
    from airflow.sdk.exceptions import ParamValidationError

    from flight_delays.manifests import main

    with pytest.raises(ParamValidationError, match="window_days"):
        main(["--date", "2013-06-30", "--conf", '{"window_days": 2}', "--out", str(tmp_path)])
