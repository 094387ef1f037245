"""Registration against a real MLflow store (SQLite) with real XGBoost models."""

from __future__ import annotations

from datetime import date

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from flight_delays.registry import CHALLENGER, CHAMPION, TrainingRunNotFound, register_model
from flight_delays.settings import DataLayout
from spark_jobs.features import FEATURE_COLUMNS, LABEL_COLUMN

EXPERIMENT = "registry-test"
TEST_DAYS = [date(2013, 6, 29), date(2013, 6, 30)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment(EXPERIMENT, artifact_location=str(root / "artifacts"))
    layout = DataLayout(root / "data")
    rng = np.random.default_rng(7)
    for day in TEST_DAYS:
        frame = pd.DataFrame(rng.uniform(0, 2000, size=(300, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
        frame[LABEL_COLUMN] = (frame["distance"] > 1000).astype("int32")
        layout.feature_partition(day).mkdir(parents=True)
        frame.to_parquet(layout.feature_partition(day) / "part-0.parquet", index=False)
    return uri, layout


def log_training_run(application: str, signal: str, seed: int) -> None:
    """Log a run the way spark_jobs/train.py does: a booster that learned from the ``signal`` column."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2000, size=(2000, len(FEATURE_COLUMNS)))
    y = (x[:, FEATURE_COLUMNS.index(signal)] > 1000).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                        xgb.DMatrix(x, label=y, feature_names=list(FEATURE_COLUMNS)), num_boost_round=5)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(tags={"spark_application": application}):
        mlflow.log_params({"test_start": "2013-06-29", "window_end": "2013-06-30"})
        signature = ModelSignature(inputs=Schema([ColSpec("double", c) for c in FEATURE_COLUMNS]))
        info = mlflow.xgboost.log_model(booster, name="model", signature=signature,
                                        pip_requirements=["xgboost"])
        mlflow.set_tag("model_uri", info.model_uri)


def register(store, application: str, model_name: str):
    uri, layout = store
    return register_model(layout=layout, tracking_uri=uri, experiment=EXPERIMENT, model_name=model_name,
                          application=application)


def aliases(store, model_name: str) -> dict[str, str]:
    return MlflowClient(tracking_uri=store[0]).get_registered_model(model_name).aliases


def test_champion_challenger_lifecycle(store):
    log_training_run("train-a", signal="temp", seed=1)  # learned noise
    first = register(store, "train-a", "lifecycle")
    assert (first.version, first.alias, first.champion_version) == ("1", CHAMPION, None)
    assert first.test_auc < 0.7
    assert aliases(store, "lifecycle") == {CHAMPION: 1}

    log_training_run("train-b", signal="distance", seed=2)  # learned the real rule: better on the same days
    second = register(store, "train-b", "lifecycle")
    assert (second.version, second.alias, second.champion_version) == ("2", CHAMPION, "1")
    assert second.champion_test_auc == pytest.approx(first.test_auc)
    assert second.test_auc > 0.95
    assert aliases(store, "lifecycle") == {CHAMPION: 2}

    log_training_run("train-c", signal="humid", seed=3)  # noise again: worse than the champion
    third = register(store, "train-c", "lifecycle")
    assert (third.version, third.alias, third.champion_version) == ("3", CHALLENGER, "2")
    assert third.champion_test_auc == pytest.approx(second.test_auc)
    assert aliases(store, "lifecycle") == {CHAMPION: 2, CHALLENGER: 3}


def test_retry_reuses_the_registered_version(store):
    log_training_run("train-retry", signal="distance", seed=4)
    first = register(store, "train-retry", "retry")
    again = register(store, "train-retry", "retry")
    assert (first.version, again.version, again.alias) == ("1", "1", CHAMPION)
    versions = MlflowClient(tracking_uri=store[0]).search_model_versions("name = 'retry'")
    assert [int(v.version) for v in versions] == [1]


def test_unknown_application_is_a_clear_error(store):
    with pytest.raises(TrainingRunNotFound,
                       match="no finished MLflow run tagged spark_application=train-nope in experiment"):
        register(store, "train-nope", "lifecycle")
