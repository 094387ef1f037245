"""The training job as the DAG submits it (a local SparkApplication), with the torch trainer, then the
registry's promotion gate on what it logged. (The xgboost trainer runs in tests/e2e/test_dag_run.py.)"""

from __future__ import annotations

from datetime import date, timedelta

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flight_delays.contract import APPLICATION_TAG, DAG_ID, FEATURE_COLUMNS, LABEL_COLUMN
from flight_delays.jobs import TRAIN_JOB
from flight_delays.layout import DataLayout
from flight_delays.partitions import publish_feature_frame
from flight_delays.registry import CHAMPION, PromotionRequest, promote, register_model
from sparkapp import states
from sparkapp.application import render_manifest
from sparkapp.hooks.local import LocalSparkApplicationClient

END = date(2013, 6, 30)
DAYS = [END - timedelta(days=i) for i in range(9, -1, -1)]  # 4 train, 3 validation, 3 test days
CARRIERS = ["AA", "B6", "DL", "UA"]


def write_features(layout: DataLayout, rows_per_day: int = 240) -> None:
    """Feature partitions where delays follow the weather (visibility) and the carrier's delay rate."""
    rng = np.random.default_rng(3)
    for day in DAYS:
        frame = pd.DataFrame(rng.uniform(0, 1, size=(rows_per_day, len(FEATURE_COLUMNS))),
                             columns=list(FEATURE_COLUMNS))
        frame.loc[rng.uniform(size=rows_per_day) < 0.1, "temp"] = np.nan  # missing weather
        score = 3 * (0.5 - frame["visib"]) + 2 * (frame["carrier_delay_rate"] - 0.5)
        frame[LABEL_COLUMN] = (score + rng.normal(0, 0.5, rows_per_day) > 0).astype("int32")
        frame.insert(0, "carrier", rng.choice(CARRIERS, rows_per_day))
        frame.insert(1, "flight", np.arange(rows_per_day, dtype="int64"))
        frame.insert(2, "origin", "JFK")
        frame.insert(3, "dest", "LAX")
        frame.insert(4, "sched_dep_time", np.full(rows_per_day, 900, dtype="int64"))
        frame["date"] = day
        publish_feature_frame(layout.feature_partition(day), frame, writer="test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-job")
    layout = DataLayout(root / "data")
    write_features(layout)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    manifest = render_manifest(TRAIN_JOB, name="train-20130630-torch001", namespace="test", arguments=[
        "--data-root", str(layout.root), "--start-date", DAYS[0].isoformat(), "--end-date", END.isoformat(),
        "--test-days", "3", "--validation-days", "3", "--trainer", "torch", "--num-workers", "2",
        "--epochs", "15", "--torch-learning-rate", "0.01", "--early-stopping-rounds", "3",
        "--mlflow-tracking-uri", tracking_uri, "--mlflow-experiment", "train-job",
        "--mlflow-artifact-location", str(root / "artifacts"),
        "--airflow-dag-id", DAG_ID, "--airflow-run-id", "manual__test",
        "--airflow-task-id", "submit_training", "--code-version", "abc123"])
    application = LocalSparkApplicationClient(state_dir=root / "applications").create_application(manifest)
    return layout, tracking_uri, application


def test_the_torch_trainer_runs_as_a_spark_application_and_records_everything(trained):
    _, tracking_uri, application = trained
    assert states.application_state(application) == states.COMPLETED
    client = MlflowClient(tracking_uri=tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("train-job").experiment_id])
    tags = (APPLICATION_TAG, "trainer", "code_version", "airflow_run_id")
    assert {k: run.data.tags[k] for k in tags} == {
        APPLICATION_TAG: "train-20130630-torch001", "trainer": "torch", "code_version": "abc123",
        "airflow_run_id": "manual__test"}
    params = run.data.params
    assert (params["trainer"], params["num_workers"], params["learning_rate"]) == ("torch", "2", "0.01")
    assert (params["validation_start"], params["test_start"]) == ("2013-06-25", "2013-06-28")
    assert 1 <= int(params["best_epoch"]) <= 15
    metrics = run.data.metrics
    assert (metrics["train_rows"], metrics["validation_rows"], metrics["test_rows"]) == (960, 720, 720)
    assert metrics["test_auc"] > 0.8  # the rule is learnable: measured 0.9+
    assert {f"test_auc_carrier_{c}" for c in CARRIERS} <= set(metrics)
    # No raw partitions behind these synthetic features: the record says so rather than inventing it.
    assert metrics["input_partitions_unvalidated"] == 21.0
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/roc_curve.png", "plots/pr_curve.png", "plots/calibration.png"}


def test_the_promotion_gate_scores_the_torch_model_as_the_job_did(trained):
    layout, tracking_uri, _ = trained
    registration = register_model(tracking_uri=tracking_uri, experiment="train-job", model_name="torch-model",
                                  application="train-20130630-torch001")
    decision = promote(layout=layout, tracking_uri=tracking_uri, model_name="torch-model",
                       version=registration.version, request=PromotionRequest())
    run = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(registration.run_id)
    assert (decision.alias, decision.reason) == (CHAMPION, "no champion yet")
    # The gate reloads the logged model through pyfunc: the same AUC as the job measured.
    assert decision.scores["auc"] == pytest.approx(run.data.metrics["test_auc"], abs=1e-6)
