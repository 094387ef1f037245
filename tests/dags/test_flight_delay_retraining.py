"""DAG integrity: it imports, is configured as documented, and parses without heavy imports."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from devtools.demo import DAG_FILE, DAG_ID, load_dag
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
        ("choose_training", "report"),
        ("choose_training", "submit_training"),
        ("choose_validation_engine", "submit_validation"),
        ("choose_validation_engine", "validate"),
        ("ingest", "choose_validation_engine"),
        ("ingest", "report"),
        # The Spark stages' arguments are the ingest task's XComs: data edges, beside the order.
        ("ingest", "submit_features"),
        ("ingest", "submit_training"),
        ("ingest", "submit_validation"),
        ("ingest", "validate"),
        ("preflight", "choose_training"),
        ("preflight", "ingest"),
        ("promote", "report"),
        ("register", "promote"),
        ("register", "report"),
        ("submit_features", "wait_for_features"),
        ("submit_training", "register"),
        ("submit_training", "wait_for_training"),
        ("submit_validation", "validate"),  # the gate judges that application's verdict
        ("submit_validation", "wait_for_validation"),
        ("validate", "report"),
        ("validate", "submit_features"),
        ("wait_for_features", "choose_training"),
        ("wait_for_training", "register"),
        ("wait_for_validation", "validate"),
    ]
    # The gate runs after the validation SparkApplication, or right after the branch without it.
    assert dag.get_task("validate").trigger_rule == "none_failed"
    # The report also runs when choose_training skipped the training (a backfill run).
    assert dag.get_task("report").trigger_rule == "none_failed"


def test_trainings_share_the_training_pool_and_its_sensor_goes_first(dag):
    from flight_delays.pools import TRAINING_POOL

    pools = {t.task_id: t.pool for t in dag.tasks}
    assert {k: v for k, v in pools.items() if v != "default_pool"} == {
        "submit_training": TRAINING_POOL, "wait_for_training": TRAINING_POOL}
    # When a submit frees the slot, its own sensor outranks any other run's submit waiting for it.
    sensor, submit = dag.get_task("wait_for_training"), dag.get_task("submit_training")
    assert (sensor.weight_rule, sensor.priority_weight) == ("absolute", 100)
    # A submit's weight is its own (1) plus one per task downstream of it (Airflow's "downstream" rule).
    assert submit.weight_rule == "downstream"
    assert 1 + len(submit.get_flat_relative_ids(upstream=False)) < sensor.priority_weight


def test_param_defaults_are_valid(dag):
    assert dag.params.validate() == {
        "window_days": 28, "test_days": 3, "validation_days": 3, "history_days": 14,
        "validation_engine": "pandas", "trainer": "xgboost", "device": "cpu", "num_workers": 2,
        "n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "early_stopping_rounds": 20, "epochs": 30,
        "torch_learning_rate": 0.001, "distributor": "torch",
        "promotion_policy": "auto", "promotion_margin": 0.002, "promotion_reason": None,
        "sample_fraction": 1.0, "backfill_training": False,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [("window_days", 3), ("test_days", 30), ("validation_engine", "dask"), ("device", "tpu"),
     ("learning_rate", 0), ("max_depth", "deep"), ("trainer", "sklearn"), ("promotion_policy", "always"),
     ("promotion_margin", 0.5), ("validation_days", 0), ("sample_fraction", 0), ("sample_fraction", 1.5),
     ("backfill_training", "yes"), ("promotion_reason", "x" * 501)],
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


def test_retries_back_off_and_every_task_has_a_timeout(dag):
    retrying = {(t.retries, t.retry_delay, t.retry_exponential_backoff, t.max_retry_delay) for t in dag.tasks}
    assert retrying == {(2, timedelta(minutes=1), 2.0, timedelta(minutes=10))}
    timeouts = {t.task_id: t.execution_timeout for t in dag.tasks}
    assert {k: v for k, v in timeouts.items() if v != timedelta(hours=1)} == {
        "submit_training": timedelta(hours=2), "wait_for_training": timedelta(hours=2)}


def test_the_schedule_gives_each_run_one_day(dag):
    """The next intervals of the nightly schedule, and the partition each run owns (its day in 2013)."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    from flight_delays.window import source_day

    timetable = coerce_to_core_timetable(dag.timetable)  # what the scheduler computes with
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    last, runs = None, []
    for _ in range(3):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        runs.append((info.run_after, info.data_interval.start, info.data_interval.end))
        last = DataInterval(info.data_interval.start, info.data_interval.end)
    utc = timezone.utc
    day = [datetime(2013, 1, d, tzinfo=utc) for d in range(1, 5)]
    # (run after, interval start, interval end): each run starts when its day is over.
    assert runs == [(day[1], day[0], day[1]), (day[2], day[1], day[2]), (day[3], day[2], day[3])]
    # Each run owns the raw and feature partitions of its interval's start day (replayed into 2013).
    assert [source_day(start.date()) for _, start, _ in runs] == [date(2013, 1, 1), date(2013, 1, 2),
                                                                date(2013, 1, 3)]
    assert source_day(date(2026, 11, 22)) == date(2013, 11, 22)
    assert source_day(date(2028, 2, 29)) == date(2013, 2, 28)
