"""The preflight task: what the params' schema cannot check, every problem listed at once."""

from __future__ import annotations

import json
import socket
from datetime import date

import pytest

from devtools.demo import load_dag
from flight_delays import preflight
from flight_delays.preflight import BadRunRequest, PreflightError, check_run, request_problems
from testing.kubernetes_api import FakeKubernetesApi, Fault

DAY = date(2013, 6, 30)
#: The DAG's param defaults (tests/dags pins them).
DEFAULTS = load_dag().params.validate()


def params(**changes) -> dict:
    return {**DEFAULTS, **changes}


def test_the_defaults_pass_and_the_plan_says_what_the_run_does(tmp_path, monkeypatch):
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "data"))
    plan = check_run(DAY, params(), backfill=False, backend="local", namespace="default")
    assert (plan.day, plan.source_day, plan.train) == ("2013-06-30", "2013-06-30", True)
    assert plan.checked[:2] == [f"data root {(tmp_path / 'data').as_uri()} is writable",
                                "Spark master local[2] (connection spark_default)"]
    assert plan.checked[2].startswith("MLflow tracking at sqlite:///")
    assert list((tmp_path / "data").iterdir()) == []  # the probe file is gone


def test_replay_days_map_to_2013():
    plan = check_run(date(2026, 11, 22), params(), backfill=False, backend="local", namespace="default")
    assert (plan.day, plan.source_day) == ("2026-11-22", "2013-11-22")


@pytest.mark.parametrize(
    ("backfill", "backfill_training", "train"),
    [(False, False, True), (False, True, True), (True, False, False), (True, True, True)],
)
def test_backfill_runs_train_only_when_asked(backfill, backfill_training, train):
    plan = check_run(DAY, params(backfill_training=backfill_training), backfill=backfill, backend="local",
                     namespace="default")
    assert plan.train is train
    # A run that trains nothing does not need MLflow.
    assert any(c.startswith("MLflow tracking") for c in plan.checked) is train


def test_held_out_days_must_leave_a_training_day():
    assert request_problems(DAY, params(window_days=7, test_days=3, validation_days=4), train=True,
                            backend="local") == [
        "test_days (3) + validation_days (4) must be smaller than window_days (7): the window needs at least "
        "one training day before the validation and test days"]
    # A backfill run that does not train has no window to check.
    assert request_problems(DAY, params(window_days=7, test_days=3, validation_days=4), train=False,
                            backend="local") == []


def test_a_window_cut_by_the_first_day_of_data_is_refused_when_too_short():
    problems = request_problems(date(2013, 1, 5), params(), train=True, backend="local")
    assert problems == [
        "the training window of 2013-01-05 starts on the first day of data (2013-01-01), so it has 5 day(s), "
        "not 28: too few for 3 test + 3 validation day(s) and a training day"]
    assert request_problems(date(2013, 1, 7), params(), train=True, backend="local") == []  # 3 + 3 + 1
    # The same day in a later year replays 2013-01-05: same answer.
    assert request_problems(date(2027, 1, 5), params(), train=True, backend="local") == problems


def test_force_needs_a_reason():
    assert request_problems(DAY, params(promotion_policy="force"), train=True, backend="local") == [
        "promotion policy 'force' needs a reason (param promotion_reason): it is recorded on the model "
        "version with who forced it"]
    assert request_problems(DAY, params(promotion_policy="force", promotion_reason="  "), train=True,
                            backend="local") != []
    assert request_problems(DAY, params(promotion_policy="force", promotion_reason="hotfix"), train=True,
                            backend="local") == []


def test_cuda_needs_a_gpu_on_the_local_backend_only(monkeypatch):
    monkeypatch.setattr(preflight, "_has_nvidia_gpu", lambda: False)
    assert request_problems(DAY, params(device="cuda"), train=True, backend="local") == [
        "device 'cuda' needs an NVIDIA GPU, and this machine shows none (nvidia-smi): the local backend runs "
        "Spark here; use device 'cpu', or the Kubernetes backend's GPU profile"]
    assert request_problems(DAY, params(device="cuda"), train=True, backend="kubernetes") == []
    monkeypatch.setattr(preflight, "_has_nvidia_gpu", lambda: True)
    assert request_problems(DAY, params(device="cuda"), train=True, backend="local") == []


def test_horovod_must_be_installed_for_a_local_horovod_run(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "horovod" else real(name))
    horovod = params(trainer="torch", distributor="horovod")
    assert request_problems(DAY, horovod, train=True, backend="local") == [
        "distributor 'horovod' needs Horovod, which is not installed here: run `make horovod` "
        "(docs/HOROVOD.md), or use distributor 'torch'"]
    assert request_problems(DAY, {**horovod, "trainer": "xgboost"}, train=True, backend="local") == []


def test_every_problem_is_listed_and_a_bad_request_is_not_retried(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "file" / "data"))
    with pytest.raises(BadRunRequest) as raised:
        check_run(DAY, params(promotion_policy="force", window_days=7, test_days=4, validation_days=3),
                  backfill=False, backend="local", namespace="default")
    lines = str(raised.value).splitlines()
    assert lines[0] == "the run of 2013-06-30 cannot work; 3 problem(s):"
    assert lines[1].startswith("- test_days (4) + validation_days (3) must be smaller than window_days (7)")
    assert lines[2].startswith("- promotion policy 'force' needs a reason")
    root = (tmp_path / "file" / "data").as_uri()
    assert lines[3].startswith(f"- the data root {root} is not writable: [Errno 20] Not a directory")


def test_an_unreachable_environment_alone_is_retried(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SPARK_DEFAULT")
    with pytest.raises(PreflightError) as raised:
        check_run(DAY, params(), backfill=True, backend="local", namespace="default")
    assert str(raised.value).startswith("the run of 2013-06-30 cannot work; 1 problem(s):\n"
                                        "- the local Spark backend is not reachable: ")
    assert "spark_default" in str(raised.value)


def test_an_mlflow_server_that_does_not_answer(monkeypatch):
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    # Refused at once by the preflight's own probe (URLError), not after MLflow's client's retries.
    with pytest.raises(PreflightError, match=rf"- the MLflow tracking server at http://127.0.0.1:{port} "
                                             r"does not answer: URLError: <urlopen error \[Errno 111\] "
                                             "Connection refused>"):
        check_run(DAY, params(), backfill=False, backend="local", namespace="default")


@pytest.fixture
def kubernetes(monkeypatch):
    """The fake API server as the ``kubernetes_default`` connection."""
    api = FakeKubernetesApi().start()
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({
        "conn_type": "kubernetes",
        "extra": {"kube_config": api.kube_config("ml-dev"), "namespace": "ml-dev"}}))
    yield api
    api.stop()


def test_on_kubernetes_the_api_must_list_spark_applications(kubernetes):
    plan = check_run(DAY, params(), backfill=True, backend="kubernetes", namespace="ml-dev")
    assert plan.checked[1] == f"Kubernetes API {kubernetes.url}, namespace ml-dev"
    listing = r"^/apis/sparkoperator.k8s.io/v1beta2/namespaces/ml-dev/sparkapplications$"
    assert kubernetes.count("GET", listing) == 1

    kubernetes.inject(Fault("GET", r"/sparkapplications$", 403))
    with pytest.raises(PreflightError) as raised:
        check_run(DAY, params(), backfill=True, backend="kubernetes", namespace="ml-dev")
    assert str(raised.value).splitlines()[1] == (
        "- the kubernetes Spark backend is not reachable: Listing SparkApplications in namespace ml-dev "
        "failed with HTTP 403: injected Forbidden")
