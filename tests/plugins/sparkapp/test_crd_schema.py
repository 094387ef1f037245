"""Every SparkApplication the DAG renders validates against the released Spark Operator CRD."""

from __future__ import annotations

from datetime import datetime, timezone

import jsonschema
import pytest
import yaml

from sparkapp.operators.spark_application import SparkApplicationOperator
from tests.conftest import SHARED_DIR

CRD_FILE = SHARED_DIR / "crds" / "sparkoperator.k8s.io_sparkapplications.yaml"


@pytest.fixture(scope="module")
def crd_schema() -> dict:
    crd = yaml.safe_load(CRD_FILE.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta2"]
    return version["schema"]["openAPIV3Schema"]


class _TaskInstance:
    dag_id = "flight_delay_retraining"
    map_index = -1

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id


def rendered_manifests() -> list[dict]:
    from flight_delays.demo import load_dag

    dag = load_dag()
    operators = [t for t in dag.tasks if isinstance(t, SparkApplicationOperator)]
    assert {t.task_id for t in operators} == {"submit_features", "submit_training"}
    start = datetime(2013, 6, 30, tzinfo=timezone.utc)
    return [
        t.build_manifest({"ti": _TaskInstance(t.task_id), "data_interval_start": start})
        for t in operators
    ]


def test_dag_manifests_validate_against_the_crd(crd_schema):
    manifests = rendered_manifests()
    for manifest in manifests:
        jsonschema.validate(manifest, crd_schema)
    assert sorted(m["metadata"]["name"].rsplit("-", 1)[0] for m in manifests) == [
        "features-20130630", "train-20130630"]


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
