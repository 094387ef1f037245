"""Training job: a delay classifier over a window of feature partitions, tracked in MLflow.

The window is split in time, never at random: the last ``--test-days`` days are the test set, the
``--validation-days`` before them the validation set (early stopping), the days before those the
training set. Two trainers share everything else (``--trainer``):

- ``xgboost``: ``xgboost.spark.SparkXGBClassifier``, ``--num-workers`` Spark tasks, ``--device``
  ``cpu`` or ``cuda``, early stopping on the validation days' log loss;
- ``torch``: a PyTorch network (``spark_jobs.torch_trainer``) trained by Spark's ``TorchDistributor``
  or by Horovod on Spark (``--distributor``), ``--num-workers`` processes, on CUDA with ``--device cuda``.

One MLflow run per training, in one experiment per model: parameters, the data window, the Airflow
dag/run/task ids, the code version, the feature list, the validation verdicts of the input
partitions, the test metrics (ROC-AUC, PR-AUC, log loss, Brier) with a per-carrier breakdown, the
ROC/PR/calibration/importance plots, and the model with its signature and an input example. The run
is tagged with the Spark application's name: that is how the registration task finds it.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from datetime import date, timedelta
from pathlib import Path

from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from flight_delays import partitions
from flight_delays.contract import APPLICATION_TAG, FEATURE_COLUMNS, LABEL_COLUMN
from flight_delays.layout import DAILY_DATASETS, PLANES, DataLayout, spark_uri
from flight_delays.publication import latest
from flight_delays.window import day_range
from spark_jobs.features import FEATURES_SCHEMA

log = logging.getLogger(__name__)

PROBABILITY = "p_delayed"
TRAINERS = ("xgboost", "torch")
#: Column saying which part of the time split a row is in.
SPLIT = "split"
#: Rows of the test set kept as the model's input example.
INPUT_EXAMPLE_ROWS = 5


def time_split(features: DataFrame, *, end: date, validation_days: int, test_days: int) -> DataFrame:
    """Add :data:`SPLIT`: ``test`` for the last ``test_days`` days up to ``end``, ``validation`` for the
    ``validation_days`` before them, ``train`` for every earlier day."""
    test_start = end - timedelta(days=test_days - 1)
    validation_start = test_start - timedelta(days=validation_days)
    return features.withColumn(
        SPLIT,
        F.when(F.col("date") >= F.lit(test_start), "test")
        .when(F.col("date") >= F.lit(validation_start), "validation")
        .otherwise("train"),
    )


def sample_training(split: DataFrame, fraction: float, *, seed: int = 7) -> DataFrame:
    """Keep a seeded ``fraction`` of the training rows; validation and test rows stay whole, so the
    metrics of a sampled model compare with everyone else's."""
    if not 0 < fraction <= 1:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return split
    return split.where((F.col(SPLIT) != "train") | (F.rand(seed=seed) < fraction))


def with_missing_as_nan(features: DataFrame) -> DataFrame:
    """XGBoost treats NaN as missing; Spark nulls (no weather, unknown plane, no history) become NaN."""
    return features.fillna(float("nan"), subset=list(FEATURE_COLUMNS))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--start-date", required=True, type=date.fromisoformat)
    parser.add_argument("--end-date", required=True, type=date.fromisoformat)
    parser.add_argument("--test-days", type=int, default=3)
    parser.add_argument("--validation-days", type=int, default=3)
    parser.add_argument("--trainer", choices=TRAINERS, default="xgboost")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--n-estimators", type=int, default=200, help="xgboost: most boosting rounds")
    parser.add_argument("--max-depth", type=int, default=6, help="xgboost")
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--early-stopping-rounds", type=int, default=20,
                        help="rounds (xgboost) or epochs (torch) without a better validation log loss")
    parser.add_argument("--epochs", type=int, default=30, help="torch: most epochs")
    parser.add_argument("--torch-learning-rate", type=float, default=1e-3, help="torch: Adam's step size")
    parser.add_argument("--distributor", choices=("torch", "horovod"), default="torch",
                        help="torch: how the training processes are run (TorchDistributor or Horovod)")
    parser.add_argument("--sample-fraction", type=float, default=1.0,
                        help="share of the training rows fitted on (validation and test rows stay whole)")
    parser.add_argument("--mlflow-tracking-uri", required=True)
    parser.add_argument("--mlflow-experiment", required=True)
    parser.add_argument("--mlflow-artifact-location", default=None,
                        help="artifact location if the experiment has to be created")
    parser.add_argument("--airflow-dag-id", default="")
    parser.add_argument("--airflow-run-id", default="")
    parser.add_argument("--airflow-task-id", default="")
    parser.add_argument("--code-version", default="", help="git sha or image version of this code")
    args = parser.parse_args(argv)
    window = (args.end_date - args.start_date).days + 1
    train_days = window - args.test_days - args.validation_days
    if args.test_days < 1 or args.validation_days < 1 or train_days < 1:
        parser.error(f"window {args.start_date}..{args.end_date} ({window} days) leaves {train_days} "
                     f"training day(s) with --validation-days {args.validation_days} and --test-days "
                     f"{args.test_days}; it needs at least one day of each")
    return args


def input_verdicts(root: str, start: date, end: date) -> dict[str, dict]:
    """The gate's verdicts on the raw partitions behind the window's features, by partition (from their
    latest publications; ``{"missing": True}`` for one never validated)."""
    data = DataLayout.for_job(root)
    folders = {f"{dataset}/{day.isoformat()}": data.raw_partition(dataset, day)
               for day in day_range(start, end) for dataset in DAILY_DATASETS}
    folders["planes/reference"] = data.reference(PLANES)
    return {key: partitions.validation(latest(folder)) or {"missing": True}
            for key, folder in folders.items()}


def fit_xgboost(split: DataFrame, args: argparse.Namespace):
    """Fit on the training days with early stopping on the validation days; return the model, its
    test predictions (pandas: label, carrier, probability), the params and the feature importance."""
    from xgboost.spark import SparkXGBClassifier

    params = {"n_estimators": args.n_estimators, "max_depth": args.max_depth,
              "learning_rate": args.learning_rate, "device": args.device, "num_workers": args.num_workers,
              "early_stopping_rounds": args.early_stopping_rounds}
    classifier = SparkXGBClassifier(
        features_col=list(FEATURE_COLUMNS), label_col=LABEL_COLUMN, missing=float("nan"),
        validation_indicator_col="is_validation", eval_metric="logloss", verbose_eval=False,
        force_repartition=True, **params,
    )
    # xgboost 3.2's data loader fails (KeyError 'values') on any Arrow batch without validation rows,
    # which day-ordered files produce: shuffle the rows so that every batch mixes the two.
    fitting = (split.where(F.col(SPLIT) != "test")
               .withColumn("is_validation", F.col(SPLIT) == "validation").orderBy(F.rand(seed=13)))
    model = classifier.fit(fitting)
    booster = model.get_booster()
    best_iteration = int(booster.attr("best_iteration") or booster.num_boosted_rounds() - 1)
    # The Spark model predicts with the trees up to the best iteration; so must the logged booster
    # (a plain Booster predicts with every tree, including the patience rounds after the best one).
    booster = booster[: best_iteration + 1]
    probability = vector_to_array(F.col("probability"))[1].alias(PROBABILITY)
    predictions = (model.transform(split.where(F.col(SPLIT) == "test"))
                   .select(LABEL_COLUMN, "carrier", probability).toPandas())
    gain = booster.get_score(importance_type="gain")
    importance = {name: float(gain.get(name, 0.0)) for name in FEATURE_COLUMNS}
    params["best_iteration"] = best_iteration
    return booster, predictions, params, importance


def fit_torch(split: DataFrame, args: argparse.Namespace):
    """The same contract as :func:`fit_xgboost`, with a network trained by ``TorchDistributor``."""
    from spark_jobs import torch_trainer

    params = {"epochs": args.epochs, "learning_rate": args.torch_learning_rate, "device": args.device,
              "num_workers": args.num_workers, "early_stopping_rounds": args.early_stopping_rounds,
              "distributor": args.distributor}
    model, history = torch_trainer.train_torch(
        split.where(F.col(SPLIT) == "train"), split.where(F.col(SPLIT) == "validation"),
        num_processes=args.num_workers, use_gpu=args.device == "cuda", epochs=args.epochs,
        learning_rate=args.torch_learning_rate, patience=args.early_stopping_rounds,
        distributor=args.distributor,
    )
    test = split.where(F.col(SPLIT) == "test").select(LABEL_COLUMN, "carrier", *FEATURE_COLUMNS).toPandas()
    test[PROBABILITY] = torch_trainer.predict(model, test[list(FEATURE_COLUMNS)])
    params["best_epoch"] = history.get("best_epoch")
    return model, test[[LABEL_COLUMN, "carrier", PROBABILITY]], params, {}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import mlflow
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    from flight_delays.evaluation import auc_by_group, binary_metrics, save_plots

    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    application = spark.sparkContext.appName
    data = DataLayout.for_job(args.data_root)
    paths = [spark_uri(part) for day in day_range(args.start_date, args.end_date)
             for part in partitions.feature_files(data.feature_partition(day))]
    features = with_missing_as_nan(spark.read.schema(FEATURES_SCHEMA).parquet(*paths))
    split = sample_training(time_split(features, end=args.end_date, validation_days=args.validation_days,
                                       test_days=args.test_days), args.sample_fraction).cache()
    rows = {name: count for name, count in split.groupBy(SPLIT).count().collect()}
    if any(not rows.get(name) for name in ("train", "validation", "test")):
        raise ValueError(f"empty split: {rows} rows by part of the window in {paths}")

    fit = fit_xgboost if args.trainer == "xgboost" else fit_torch
    model, predictions, params, importance = fit(split, args)
    labels, probabilities = predictions[LABEL_COLUMN], predictions[PROBABILITY]
    metrics = {f"test_{k}": v for k, v in binary_metrics(labels, probabilities).items()}
    by_carrier = auc_by_group(labels, probabilities, predictions["carrier"])
    metrics.update({f"test_auc_carrier_{c}": b["auc"] for c, b in by_carrier.items() if b["auc"] is not None})
    metrics.update({f"{name}_rows": float(count) for name, count in rows.items()})
    verdicts = input_verdicts(args.data_root, args.start_date, args.end_date)
    metrics["input_partitions_unvalidated"] = float(sum("missing" in v for v in verdicts.values()))
    metrics["input_validation_warnings"] = float(sum(len(v.get("warnings", [])) for v in verdicts.values()))
    log.info("Test metrics: %s", metrics)

    mlflow.set_tracking_uri(args.mlflow_tracking_uri)
    if mlflow.get_experiment_by_name(args.mlflow_experiment) is None:
        mlflow.create_experiment(args.mlflow_experiment, artifact_location=args.mlflow_artifact_location)
    mlflow.set_experiment(args.mlflow_experiment)
    test_start = args.end_date - timedelta(days=args.test_days - 1)
    tags = {APPLICATION_TAG: application, "trainer": args.trainer, "code_version": args.code_version,
            "airflow_dag_id": args.airflow_dag_id, "airflow_run_id": args.airflow_run_id,
            "airflow_task_id": args.airflow_task_id}
    with mlflow.start_run(run_name=application, tags=tags) as run:
        mlflow.log_params({**{k: v for k, v in params.items() if v is not None}, "trainer": args.trainer,
                           "sample_fraction": args.sample_fraction,
                           "window_start": args.start_date, "window_end": args.end_date,
                           "validation_start": test_start - timedelta(days=args.validation_days),
                           "test_start": test_start, "features": ",".join(FEATURE_COLUMNS)})
        mlflow.log_metrics(metrics)
        mlflow.log_dict({"features": list(FEATURE_COLUMNS), "label": LABEL_COLUMN}, "features.json")
        mlflow.log_dict(by_carrier, "per_carrier.json")
        mlflow.log_dict(verdicts, "input_validation.json")
        with tempfile.TemporaryDirectory() as folder:
            save_plots(labels, probabilities, importance, Path(folder))
            mlflow.log_artifacts(folder, artifact_path="plots")
        test_rows = split.where(F.col(SPLIT) == "test").select(*FEATURE_COLUMNS)
        # JSON has no NaN: the example shows the columns and their types, missing values as 0.
        example = test_rows.limit(INPUT_EXAMPLE_ROWS).toPandas().fillna(0.0)
        signature = ModelSignature(inputs=Schema([ColSpec("double", c) for c in FEATURE_COLUMNS]))
        if args.trainer == "xgboost":
            from xgboost import __version__ as xgboost_version

            info = mlflow.xgboost.log_model(
                model, name="model", signature=signature, input_example=example,
                # Given explicitly: inferring requirements re-imports the model and costs seconds.
                pip_requirements=[f"xgboost=={xgboost_version}"],
            )
        else:
            from spark_jobs import torch_trainer

            signature = infer_signature(example, torch_trainer.predict(model, example))
            info = torch_trainer.log_torch_model(model, signature=signature, input_example=example)
        mlflow.set_tag("model_uri", info.model_uri)
        log.info("Logged model %s in MLflow run %s", info.model_uri, run.info.run_id)
    split.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
