"""The trainer's Horovod backend: real ``horovod.spark.run`` runs (2 Spark tasks, Gloo) on the small
synthetic flights of test_torch_trainer.py.

Needs Horovod (``make horovod``); without it the training tests fail with the trainer's message saying
so. Left out of the default run (tests/conftest.py); ``make test-horovod`` builds Horovod and runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from spark_jobs import torch_trainer
from spark_jobs.torch_trainer import train_torch
from tests.spark_jobs.test_torch_trainer import assert_learned_with_early_stopping, flights

pytestmark = pytest.mark.horovod

# Validation ROC-AUC measured with these settings on data seeds 1-5 (training s, validation s + 1):
# 0.931-0.950 (0.931 on the fixture's), under Horovod as under TorchDistributor; the bar is
# test_torch_trainer.MIN_VALID_AUC.
SETTINGS = {"num_processes": 2, "use_gpu": False, "epochs": 8, "batch_size": 128, "learning_rate": 0.01,
            "hidden_units": (16,), "patience": 2, "seed": 7}


@pytest.fixture(scope="module")
def data(spark):
    return flights(spark, 2000, seed=1), flights(spark, 1000, seed=2)


@pytest.fixture(scope="module")
def horovod_run(data):
    """One Horovod training run: (model, history) and what each rank returned to ``horovod.spark.run``."""
    # The trainer's own import of horovod.spark: without Horovod, its error says to run `make horovod`.
    horovod_spark = torch_trainer._horovod_spark()
    run, ranks = horovod_spark.run, []

    def recording_run(*args, **kwargs):
        ranks.extend(run(*args, **kwargs))
        return ranks

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(horovod_spark, "run", recording_run)
        model, history = train_torch(*data, distributor="horovod", **SETTINGS)
    return model, history, ranks


@pytest.fixture(scope="module")
def torch_run(data):
    return train_torch(*data, distributor="torch", **SETTINGS)


def test_trained_model_separates_delays(data, horovod_run):
    model, history, _ = horovod_run
    assert_learned_with_early_stopping(model, history, data[1])  # the same checks as TorchDistributor's


def test_every_rank_ends_with_the_same_weights(horovod_run):
    model, history, ranks = horovod_run
    assert len(ranks) == 2
    first, second = ranks
    # The ranks trained on different halves of each epoch: only averaged gradients keep them equal.
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for name, weights in first["state_dict"].items():
        assert torch.equal(weights, second["state_dict"][name]), name
    assert first["history"] == second["history"] == history
    for name, weights in model.state_dict().items():
        assert torch.equal(weights, first["state_dict"][name]), name


def test_same_model_as_torch_distributor(horovod_run, torch_run):
    model, history, _ = horovod_run
    torch_model, torch_history = torch_run
    assert type(model) is type(torch_model)
    assert not model.training
    assert {weights.device.type for weights in model.state_dict().values()} == {"cpu"}
    # The same training code and, with 2 processes, the same arithmetic (averaging two gradients is
    # exact in either order): measured bit for bit equal; the tolerances only allow for another CPU.
    assert history["best_epoch"] == torch_history["best_epoch"]
    assert history["valid_log_loss"] == pytest.approx(torch_history["valid_log_loss"], rel=1e-6)
    assert history["train_log_loss"] == pytest.approx(torch_history["train_log_loss"], rel=1e-6)
    torch_weights = torch_model.state_dict()
    for name, weights in model.state_dict().items():
        torch.testing.assert_close(weights, torch_weights[name], rtol=1e-5, atol=1e-6)


def test_training_function_travels_by_value_with_horovods_pickler(tmp_path):
    """horovod.spark pickles the function with cloudpickle itself, not pyspark's copy: on executors
    without this project it must arrive by value (locally the project is importable anyway)."""
    import cloudpickle

    with torch_trainer._pickled_by_value():
        payload = cloudpickle.dumps(torch_trainer._horovod_worker)
    code = ("import pickle, sys; sys.modules['spark_jobs'] = None; "
            "print(pickle.loads(sys.stdin.buffer.read()).__name__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, cwd=tmp_path,
                            env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "_horovod_worker"
