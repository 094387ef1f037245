"""DAG integrity: it imports, is configured as documented, and parses without heavy imports."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from flight_delays.demo import DAG_FILE, DAG_ID, load_dag
from tests.conftest import PROJECT_ROOT

#: Modules that a parse must not import: each costs from 0.5 s to several seconds.
HEAVY_MODULES = ("pyspark", "pandas", "great_expectations", "mlflow", "xgboost", "sklearn", "kubernetes",
                 "airflow.providers.apache.spark", "airflow.providers.cncf.kubernetes")


@pytest.fixture(scope="module")
def dag():
    return load_dag()


def test_dag_folder_imports_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [DAG_ID]


def test_every_task_has_owner_retries_and_the_dag_is_documented(dag):
    assert dag.tags == {"ml", "flight-delays", "spark"}
    assert dag.doc_md and dag.doc_md.lstrip().startswith("### Flight-delay model: nightly retraining")
    assert {(t.owner, t.retries) for t in dag.tasks} == {("ml-platform", 2)}
    assert dag.max_active_runs == 1 and dag.catchup is False


def test_schedule_is_an_explicit_daily_data_interval(dag):
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 0 * * *", "UTC")
    assert dag.start_date == datetime(2013, 1, 1, tzinfo=timezone.utc)


def test_tasks_run_in_pipeline_order(dag):
    edges = sorted((up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids)
    assert edges == [
        ("choose_validation_engine", "submit_validation"),
        ("choose_validation_engine", "validate"),
        ("ingest", "choose_validation_engine"),
        ("ingest", "report"),
        ("ingest", "validate"),
        ("promote", "report"),
        ("register", "promote"),
        ("register", "report"),
        ("submit_features", "wait_for_features"),
        ("submit_training", "register"),
        ("submit_training", "wait_for_training"),
        ("submit_validation", "wait_for_validation"),
        ("validate", "report"),
        ("validate", "submit_features"),
        ("wait_for_features", "submit_training"),
        ("wait_for_training", "register"),
        ("wait_for_validation", "validate"),
    ]
    # The gate runs after the validation SparkApplication, or right after the branch without it.
    assert dag.get_task("validate").trigger_rule == "none_failed"


def test_param_defaults_are_valid(dag):
    assert dag.params.validate() == {
        "window_days": 28, "test_days": 3, "validation_days": 3, "history_days": 14,
        "validation_engine": "pandas", "trainer": "xgboost", "device": "cpu", "num_workers": 2,
        "n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "early_stopping_rounds": 20, "epochs": 30,
        "torch_learning_rate": 0.001, "distributor": "torch",
        "promotion_policy": "auto", "promotion_margin": 0.002, "promotion_reason": "",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [("window_days", 3), ("test_days", 30), ("validation_engine", "dask"), ("device", "tpu"),
     ("learning_rate", 0), ("max_depth", "deep"), ("trainer", "sklearn"), ("promotion_policy", "always"),
     ("promotion_margin", 0.5), ("validation_days", 0)],
)
def test_params_refuse_bad_values_naming_the_param(dag, name, value):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match=name):
        params[name] = value
        params.validate()


def test_parse_imports_nothing_heavy():
    # A fresh interpreter, as the DAG processor's: what does parsing the file add to sys.modules?
    script = f"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(dag_folder={str(DAG_FILE)!r})
assert not bag.import_errors, bag.import_errors
print(json.dumps(sorted(set(sys.modules) - before)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=PROJECT_ROOT)
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in imported if m.split(".")[0] in HEAVY_MODULES or m.startswith(HEAVY_MODULES)]
    assert heavy == []
    assert "flight_delays.settings" in imported and "sparkapp.application" in imported
