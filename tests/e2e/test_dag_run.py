"""The whole DAG through ``dag.test()`` on the embedded default: real Airflow tasks, local
``spark-submit``, Great Expectations and an MLflow SQLite store, on the real 2013 flights."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, datetime, timezone

import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from devtools.demo import run_dag
from devtools.manifests import render_run
from flight_delays import contract, settings
from flight_delays.layout import DATA_FILE, DataLayout
from flight_delays.partitions import feature_files
from flight_delays.publication import latest
from sparkapp.application import application_name
from sparkapp.hooks.local import LocalSparkApplicationClient

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def airflow_db():
    subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)


def without_run_identity(spec: dict) -> dict:
    """The spec without what names the run (pod labels, the run id argument): a preview has no run."""
    arguments = list(spec["arguments"])
    if "--airflow-run-id" in arguments:
        del arguments[arguments.index("--airflow-run-id") + 1]
    return {**spec, "arguments": arguments, **{role: {k: v for k, v in spec[role].items() if k != "labels"}
                                                for role in ("driver", "executor")}}


def report_of(day: date) -> dict:
    return json.loads(DataLayout.from_env().report(day).read_text())


def assert_training_run_is_fully_recorded(client: MlflowClient, run_id: str) -> None:
    """Everything issue 5 asks a training run to record, on the real run of the DAG."""
    run = client.get_run(run_id)
    assert {k: run.data.tags[k] for k in ("airflow_dag_id", "airflow_task_id", "trainer")} == {
        "airflow_dag_id": contract.DAG_ID, "airflow_task_id": "submit_training",
        "trainer": "xgboost"}
    assert run.data.tags["airflow_run_id"].startswith("manual__")  # dag.test() names runs by the time
    assert run.data.tags["code_version"] not in ("", "unknown")
    params = run.data.params
    window = tuple(params[k] for k in ("window_start", "validation_start", "test_start", "window_end"))
    assert window == ("2013-06-03", "2013-06-25", "2013-06-28", "2013-06-30")
    assert params["features"].split(",")[:3] == ["month", "day_of_week", "sched_dep_hour"]
    assert int(params["best_iteration"]) < 200  # early stopping on the validation days
    metrics = run.data.metrics
    assert {"test_auc", "test_pr_auc", "test_log_loss", "test_brier", "train_rows", "validation_rows",
            "test_rows", "input_partitions_unvalidated"} <= set(metrics)
    assert metrics["input_partitions_unvalidated"] == 0
    assert any(k.startswith("test_auc_carrier_") for k in metrics)
    artifacts = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"features.json", "per_carrier.json", "input_validation.json", "plots/roc_curve.png",
            "plots/pr_curve.png", "plots/calibration.png", "plots/feature_importance.png"} <= artifacts
    model = mlflow.models.get_model_info(run.data.tags["model_uri"])
    assert model.signature.inputs.input_names()[:2] == ["month", "day_of_week"]
    assert model.saved_input_example_info is not None


def assert_cost_inputs_are_recorded(client: MlflowClient, report: dict) -> None:
    """Each Spark stage's cost inputs in the report, and as metrics of the training's MLflow run."""
    cost = report["cost"]
    assert sorted(cost["stages"]) == ["features", "training"]  # validation ran in the worker (pandas)
    for stage in cost["stages"].values():
        # FEATURES_JOB and TRAIN_JOB ask for 2 executors of 1 core and no GPU
        requested = (stage["executors"], stage["executor_cores"], stage["gpus"], stage["gpu_seconds"])
        assert requested == (2, 1, 0, 0)
        assert stage["executor_core_seconds"] == 2 * stage["wall_seconds"] > 0
        assert stage["driver_core_seconds"] == stage["wall_seconds"]
    assert cost["total"]["wall_seconds"] == sum(s["wall_seconds"] for s in cost["stages"].values())
    metrics = client.get_run(report["model"]["run_id"]).data.metrics
    assert {k: v for k, v in metrics.items() if k.startswith("cost.")} == {
        **{f"cost.{name}.{figure}": cost["stages"][name][figure] for name in ("features", "training")
           for figure in ("wall_seconds", "driver_core_seconds", "executor_core_seconds", "gpu_seconds")},
        **{f"cost.total.{figure}": value for figure, value in cost["total"].items()},
    }


def test_nightly_runs_train_and_register_on_real_data(airflow_db):
    layout = DataLayout.from_env()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())

    preview = render_run(date(2013, 6, 30))  # on the empty data root, as the run will find it
    first = run_dag(date(2013, 6, 30))
    assert first.state == "success"
    report = report_of(date(2013, 6, 30))
    # An empty data root: the first run ingests its day plus 27 window days and 14 history days.
    assert (report["rows_ingested"], report["days_ingested"]) == ({"flights": 918, "weather": 72}, 42)
    assert report["validation"] == {"partitions": 85, "passed": True, "critical_failures": 0,
                                    "warnings": 0, "failures": [], "quarantined": [],
                                    "data_docs": str(layout.data_docs / "index.html")}
    assert len(list(layout.data_docs.glob("validations/**/*.html"))) == 85
    assert 700 <= report["feature_rows"] <= 918  # flights of the day that arrived
    assert 0.65 <= report["test_metrics"]["test_auc"] <= 0.90
    assert (report["model"]["version"], report["model"]["alias"]) == ("1", "champion")
    assert report["model"]["reason"] == "no champion yet"
    assert int(client.get_model_version_by_alias(contract.MODEL_NAME, "champion").version) == 1
    assert_training_run_is_fully_recorded(client, report["model"]["run_id"])
    assert_cost_inputs_are_recorded(client, report)
    assert len(list(layout.features.glob("date=*"))) == 28
    # `make manifests` previews exactly the specs the run submitted.
    applications = LocalSparkApplicationClient()
    for manifest in preview.values():
        submitted = applications.get_application(manifest["metadata"]["name"], "default")
        assert without_run_identity(submitted["spec"]) == without_run_identity(manifest["spec"])
        assert submitted["status"]["applicationState"] == {"state": "COMPLETED"}

    second = run_dag(date(2013, 7, 1))
    assert second.state == "success"
    report = report_of(date(2013, 7, 1))
    # The next night only ingests its own day, and computes only its own day's features.
    assert report["days_ingested"] == 1 and report["validation"]["partitions"] == 3
    name = application_name("features", dag_id=contract.DAG_ID, task_id="submit_features",
                            data_interval_start=datetime(2013, 7, 1, tzinfo=timezone.utc))
    features_job = applications.get_application(name, "default")["spec"]["arguments"]
    assert features_job[features_job.index("--start-date") + 1] == "2013-07-01"
    assert features_job[features_job.index("--history-start") + 1] == "2013-06-17"
    assert report["model"]["version"] == "2" and report["model"]["champion_version"] == "1"
    model = report["model"]
    gain = model["test_auc"] - model["champion_test_auc"]
    if model["alias"] == "champion":
        assert gain >= 0.002 and model["reason"].endswith("guard metrics within tolerance")
    else:
        assert model["alias"] == "challenger"
        assert "below the margin" in model["reason"] or "more than the tolerance" in model["reason"]
    aliases = client.get_registered_model(contract.MODEL_NAME).aliases
    assert aliases[report["model"]["alias"]] == 2 and "champion" in aliases

    # The partitions of the first night were not duplicated by the second.
    raw = layout.raw_partition("flights", date(2013, 6, 30))
    flights = pq.ParquetFile(latest(raw).path(raw, DATA_FILE).path).read().to_pandas()
    assert len(flights) == 918
    features = pd.concat([pq.ParquetFile(part.path).read().to_pandas()
                          for part in feature_files(layout.feature_partition(date(2013, 6, 30)))])
    assert len(features) == len(features.drop_duplicates()) == int(flights["arr_delay"].notna().sum())
