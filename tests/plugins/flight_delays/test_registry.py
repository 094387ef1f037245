"""Registration and the promotion gate against real MLflow: the embedded SQLite store, and a real
``mlflow server`` process on 127.0.0.1 (SQLite backend, local artifacts) reached over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from flight_delays.contract import APPLICATION_TAG, FEATURE_COLUMNS, LABEL_COLUMN
from flight_delays.layout import DataLayout
from flight_delays.partitions import publish_feature_frame
from flight_delays.preflight import environment_problems
from flight_delays.registry import (
    CHALLENGER,
    CHAMPION,
    PromotionRequest,
    PromotionRequestError,
    TrainingRunNotFound,
    decide,
    promote,
    register_model,
)

EXPERIMENT = "registry-test"
TEST_DAYS = [date(2013, 6, 29), date(2013, 6, 30)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server``: SQLite backend store, artifacts served from a local folder."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = (root / "server.log").read_text()[-2000:]
                raise RuntimeError(f"mlflow server did not start: {output}") from None
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module", params=["embedded", "server"])
def store(request, tmp_path_factory):
    """(tracking URI, data layout with two test days of features): one per kind of MLflow store."""
    root = tmp_path_factory.mktemp(f"registry-{request.param}")
    if request.param == "server":
        uri = request.getfixturevalue("mlflow_server")
        artifact_location = None  # the server's artifact store (mlflow-artifacts:/)
    else:
        uri = f"sqlite:///{root / 'mlflow.db'}"
        artifact_location = str(root / "artifacts")
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location)
    layout = DataLayout(root / "data")
    rng = np.random.default_rng(7)
    for day in TEST_DAYS:
        frame = pd.DataFrame(rng.uniform(0, 2000, size=(300, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
        frame[LABEL_COLUMN] = (frame["distance"] > 1000).astype("int32")
        publish_feature_frame(layout.feature_partition(day), frame, writer="test")
    return uri, layout


def log_training_run(store, application: str, signal: str, seed: int, rounds: int = 5) -> None:
    """Log a run the way spark_jobs/train.py does: a booster that learned from the ``signal`` column."""
    mlflow.set_tracking_uri(store[0])
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2000, size=(2000, len(FEATURE_COLUMNS)))
    y = (x[:, FEATURE_COLUMNS.index(signal)] > 1000).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "seed": 0},
                        xgb.DMatrix(x, label=y, feature_names=list(FEATURE_COLUMNS)), num_boost_round=rounds)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(tags={APPLICATION_TAG: application, "trainer": "xgboost"}):
        mlflow.log_params({"test_start": "2013-06-29", "window_end": "2013-06-30"})
        signature = ModelSignature(inputs=Schema([ColSpec("double", c) for c in FEATURE_COLUMNS]))
        info = mlflow.xgboost.log_model(booster, name="model", signature=signature,
                                        pip_requirements=["xgboost"])
        mlflow.set_tag("model_uri", info.model_uri)


def train_and_gate(store, model_name: str, application: str, signal: str, seed: int,
                   request: PromotionRequest | None = None):
    log_training_run(store, application, signal, seed)
    registration = register_model(tracking_uri=store[0], experiment=EXPERIMENT, model_name=model_name,
                                  application=application)
    return promote(layout=store[1], tracking_uri=store[0], model_name=model_name,
                   version=registration.version, request=request or PromotionRequest())


def aliases(store, model_name: str) -> dict[str, int]:
    # The SQLite store gives versions as int, the REST API as str.
    aliases = MlflowClient(tracking_uri=store[0]).get_registered_model(model_name).aliases
    return {alias: int(version) for alias, version in aliases.items()}


def version_tags(store, model_name: str, version: str) -> dict[str, str]:
    tags = MlflowClient(tracking_uri=store[0]).get_model_version(model_name, version).tags
    return {k: v for k, v in tags.items() if k.startswith("promotion.")}


def test_better_model_is_promoted_worse_one_kept_as_challenger(store):
    first = train_and_gate(store, "lifecycle", "train-a", signal="temp", seed=1)  # learned noise
    assert (first.version, first.alias, first.reason) == ("1", CHAMPION, "no champion yet")
    assert first.scores["auc"] < 0.7

    second = train_and_gate(store, "lifecycle", "train-b", signal="distance", seed=2)  # the real rule
    assert (second.version, second.alias, second.champion_version) == ("2", CHAMPION, "1")
    assert second.champion_scores["auc"] == pytest.approx(first.scores["auc"])
    assert second.scores["auc"] > 0.95
    tags = version_tags(store, "lifecycle", "2")
    assert {k: tags[k] for k in ("promotion.verdict", "promotion.policy", "promotion.margin",
                                 "promotion.primary_metric", "promotion.champion_version",
                                 "promotion.backfill")} == {
        "promotion.verdict": "champion", "promotion.policy": "auto", "promotion.margin": "0.002",
        "promotion.primary_metric": "auc", "promotion.champion_version": "1", "promotion.backfill": "false"}
    assert float(tags["promotion.candidate_auc"]) == pytest.approx(second.scores["auc"], abs=1e-6)
    assert float(tags["promotion.champion_auc"]) == pytest.approx(first.scores["auc"], abs=1e-6)
    assert tags["promotion.reason"].startswith("auc ") and "beats champion" in tags["promotion.reason"]

    third = train_and_gate(store, "lifecycle", "train-c", signal="humid", seed=3)  # noise again
    assert (third.version, third.alias, third.champion_version) == ("3", CHALLENGER, "2")
    assert "below the margin 0.002" in third.reason
    assert version_tags(store, "lifecycle", "3")["promotion.verdict"] == "challenger"
    assert aliases(store, "lifecycle") == {CHAMPION: 2, CHALLENGER: 3}


def test_a_tie_within_the_margin_is_not_promoted(store):
    train_and_gate(store, "tie", "tie-a", signal="distance", seed=5)
    same = train_and_gate(store, "tie", "tie-b", signal="distance", seed=5)  # the same model again
    assert same.scores == same.champion_scores
    assert (same.alias, same.reason.endswith("gain +0.0000 below the margin 0.002")) == (CHALLENGER, True)
    assert aliases(store, "tie") == {CHAMPION: 1, CHALLENGER: 2}


def test_force_promotes_and_records_who_and_why(store):
    train_and_gate(store, "forced", "forced-a", signal="distance", seed=6)
    forced = train_and_gate(store, "forced", "forced-b", signal="temp", seed=7, request=PromotionRequest(
        policy="force", reason="rollback drill INC-42", requested_by="alice"))
    assert (forced.alias, forced.reason) == (CHAMPION, "forced by alice: rollback drill INC-42")
    tags = version_tags(store, "forced", "2")
    assert (tags["promotion.requested_by"], tags["promotion.request_reason"], tags["promotion.policy"]) == (
        "alice", "rollback drill INC-42", "force")
    assert aliases(store, "forced") == {CHAMPION: 2}


def test_never_and_backfill_do_not_move_the_champion(store):
    train_and_gate(store, "held", "held-a", signal="temp", seed=8)
    better = dict(signal="distance", seed=9)
    backfilled = train_and_gate(store, "held", "held-b", **better, request=PromotionRequest(backfill=True))
    assert (backfilled.alias, backfilled.reason) == (CHALLENGER, "backfill runs never move champion")
    assert version_tags(store, "held", "2")["promotion.backfill"] == "true"
    never = train_and_gate(store, "held", "held-c", **better, request=PromotionRequest(policy="never"))
    assert (never.alias, never.reason) == (CHALLENGER, "policy never: registered without promotion")
    assert aliases(store, "held") == {CHAMPION: 1, CHALLENGER: 3}


def test_retry_after_a_crash_between_register_and_alias(store):
    log_training_run(store, "crashy", signal="distance", seed=10)
    register = dict(tracking_uri=store[0], experiment=EXPERIMENT, model_name="crashy", application="crashy")
    register_model(**register)  # ... and the worker dies before the promotion task runs
    retried = register_model(**register)
    decision = promote(layout=store[1], tracking_uri=store[0], model_name="crashy", version=retried.version,
                       request=PromotionRequest())
    again = promote(layout=store[1], tracking_uri=store[0], model_name="crashy", version=retried.version,
                    request=PromotionRequest())  # the promotion task retried after setting the alias
    versions = MlflowClient(tracking_uri=store[0]).search_model_versions("name = 'crashy'")
    assert [str(v.version) for v in versions] == ["1"]
    assert (decision.alias, again.alias, again.reason) == (
        CHAMPION, CHAMPION, "already champion (a retry of the same run)")
    assert aliases(store, "crashy") == {CHAMPION: 1}
    assert version_tags(store, "crashy", "1")["promotion.reason"] == "no champion yet"


def test_the_preflight_reaches_this_store(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store[0])
    problems, checked = environment_problems(train=True, backend="local", namespace="default")
    assert (problems, checked[-1]) == ([], f"MLflow tracking at {store[0]}")


def test_unknown_application_is_a_clear_error(store):
    with pytest.raises(TrainingRunNotFound,
                       match="no finished MLflow run tagged spark_application=train-nope in experiment"):
        register_model(tracking_uri=store[0], experiment=EXPERIMENT, model_name="lifecycle",
                       application="train-nope")


SCORES = {"auc": 0.75, "log_loss": 0.60, "brier": 0.20}


@pytest.mark.parametrize(("candidate", "request_", "alias", "reason"), [
    ({**SCORES, "auc": 0.753}, PromotionRequest(), CHAMPION,
     "auc 0.7530 beats champion 0.7500 by +0.0030 (margin 0.002); guard metrics within tolerance"),
    ({**SCORES, "auc": 0.751}, PromotionRequest(), CHALLENGER,
     "auc 0.7510 vs champion 0.7500: gain +0.0010 below the margin 0.002"),
    ({**SCORES, "auc": 0.76, "log_loss": 0.62}, PromotionRequest(), CHALLENGER,
     "log_loss 0.6200 vs champion 0.6000: worse by 0.0200, more than the tolerance 0.01"),
    ({**SCORES, "auc": 0.76, "brier": 0.21}, PromotionRequest(), CHALLENGER,
     "brier 0.2100 vs champion 0.2000: worse by 0.0100, more than the tolerance 0.005"),
    ({**SCORES, "auc": 0.76}, PromotionRequest(margin=0.02), CHALLENGER,
     "auc 0.7600 vs champion 0.7500: gain +0.0100 below the margin 0.02"),
    ({**SCORES, "auc": 0.60}, PromotionRequest(policy="force", reason="drill", requested_by="bob"), CHAMPION,
     "forced by bob: drill"),
    ({**SCORES, "auc": 0.90}, PromotionRequest(policy="force", reason="x", backfill=True), CHALLENGER,
     "backfill runs never move champion"),
])
def test_decide(candidate, request_, alias, reason):
    assert decide(candidate, SCORES, request_) == (alias, reason)


@pytest.mark.parametrize(("request_", "message"), [
    (PromotionRequest(policy="sometimes"),
     r"policy must be one of \('auto', 'never', 'force'\), got 'sometimes'"),
    (PromotionRequest(policy="force", reason="  "), "promotion policy 'force' needs a reason"),
    (PromotionRequest(margin=-0.1), "margin must be between 0 and 1, got -0.1"),
])
def test_bad_promotion_requests_are_refused(request_, message):
    with pytest.raises(PromotionRequestError, match=message):
        request_.check()


def test_mlflow_run_url_names_the_runs_experiment(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from flight_delays import settings
    from flight_delays.registry import mlflow_run_url

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    experiment = client.create_experiment("flight-delays", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment).info.run_id
    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    assert mlflow_run_url(run) is None
    monkeypatch.setenv("MLFLOW_UI_URL", "https://mlflow.example.com")
    assert mlflow_run_url(run) == f"https://mlflow.example.com/#/experiments/{experiment}/runs/{run}"
