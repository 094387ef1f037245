"""Training job: XGBoost on Spark (``xgboost.spark``) over a window of feature partitions, tracked in MLflow.

The last ``--test-days`` days of the window are the test set, the days before them the training set
(a time split: a random split would let the model see the future). Logs the parameters, the test
metrics and the booster (an MLflow ``xgboost`` model, loadable without Spark) to one MLflow run,
tagged with the Spark application's name so that the registration task finds it.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date, timedelta

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.features import FEATURE_COLUMNS, FEATURES_SCHEMA, LABEL_COLUMN, day_range

log = logging.getLogger(__name__)

#: The MLflow run tag that names the SparkApplication that trained the model.
APPLICATION_TAG = "spark_application"
PROBABILITY = "p_delayed"


def time_split(features: DataFrame, *, end: date, test_days: int) -> tuple[DataFrame, DataFrame]:
    """Split into (train, test): test is the last ``test_days`` days up to ``end``, train all before."""
    test_start = end - timedelta(days=test_days - 1)
    is_test = F.col("date") >= F.lit(test_start)
    return features.where(~is_test), features.where(is_test)


def with_missing_as_nan(features: DataFrame) -> DataFrame:
    """XGBoost treats NaN as missing; Spark nulls (no weather, unknown plane, no history) become NaN."""
    return features.fillna(float("nan"), subset=list(FEATURE_COLUMNS))


def evaluate(predictions: DataFrame) -> dict[str, float]:
    """Test metrics of a DataFrame with the label and ``p_delayed``: ROC-AUC, PR-AUC, log loss, Brier."""
    scored = predictions.select(F.col(LABEL_COLUMN).cast("double").alias("label"), F.col(PROBABILITY))
    metrics = {}
    for metric, name in (("areaUnderROC", "test_auc"), ("areaUnderPR", "test_pr_auc")):
        evaluator = BinaryClassificationEvaluator(rawPredictionCol=PROBABILITY, labelCol="label",
                                                  metricName=metric)
        metrics[name] = evaluator.evaluate(scored)
    p = F.least(F.greatest(F.col(PROBABILITY), F.lit(1e-15)), F.lit(1 - 1e-15))
    row = scored.agg(
        F.avg(-(F.col("label") * F.log(p) + (1 - F.col("label")) * F.log(1 - p))).alias("test_log_loss"),
        F.avg((F.col(PROBABILITY) - F.col("label")) ** 2).alias("test_brier"),
        F.avg("label").alias("test_positive_rate"),
        F.count(F.lit(1)).alias("test_rows"),
    ).first()
    metrics.update({k: float(v) for k, v in row.asDict().items()})
    return metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--start-date", required=True, type=date.fromisoformat)
    parser.add_argument("--end-date", required=True, type=date.fromisoformat)
    parser.add_argument("--test-days", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--n-estimators", type=int, default=200)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--mlflow-tracking-uri", required=True)
    parser.add_argument("--mlflow-experiment", required=True)
    parser.add_argument("--mlflow-artifact-location", default=None,
                        help="artifact location if the experiment has to be created")
    args = parser.parse_args(argv)
    train_days = (args.end_date - args.start_date).days + 1 - args.test_days
    if args.test_days < 1 or train_days < 1:
        parser.error(f"window {args.start_date}..{args.end_date} leaves {train_days} training day(s) "
                     f"with --test-days {args.test_days}; it needs at least one of each")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from xgboost import __version__ as xgboost_version
    from xgboost.spark import SparkXGBClassifier

    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    application = spark.sparkContext.appName
    root = args.data_root.rstrip("/")
    paths = [f"{root}/features/date={d.isoformat()}" for d in day_range(args.start_date, args.end_date)]
    features = with_missing_as_nan(
        spark.read.schema(FEATURES_SCHEMA).option("basePath", f"{root}/features").parquet(*paths)
    )
    train, test = time_split(features, end=args.end_date, test_days=args.test_days)
    train_rows, test_rows = train.count(), test.count()
    if not train_rows or not test_rows:
        raise ValueError(f"empty split: {train_rows} training and {test_rows} test rows in {paths}")

    params = {"n_estimators": args.n_estimators, "max_depth": args.max_depth,
              "learning_rate": args.learning_rate, "device": args.device, "num_workers": args.num_workers}
    classifier = SparkXGBClassifier(features_col=list(FEATURE_COLUMNS), label_col=LABEL_COLUMN,
                                    missing=float("nan"), verbose_eval=False, **params)
    model = classifier.fit(train)
    predictions = model.transform(test).withColumn(
        PROBABILITY, vector_to_array(F.col("probability"))[1]
    )
    metrics = evaluate(predictions)
    metrics["train_rows"] = float(train_rows)
    log.info("Test metrics: %s", metrics)

    mlflow.set_tracking_uri(args.mlflow_tracking_uri)
    if mlflow.get_experiment_by_name(args.mlflow_experiment) is None:
        mlflow.create_experiment(args.mlflow_experiment, artifact_location=args.mlflow_artifact_location)
    mlflow.set_experiment(args.mlflow_experiment)
    test_start = args.end_date - timedelta(days=args.test_days - 1)
    with mlflow.start_run(run_name=application, tags={APPLICATION_TAG: application}) as run:
        mlflow.log_params({**params, "window_start": args.start_date, "window_end": args.end_date,
                           "test_start": test_start, "features": ",".join(FEATURE_COLUMNS)})
        mlflow.log_metrics(metrics)
        signature = ModelSignature(inputs=Schema([ColSpec("double", c) for c in FEATURE_COLUMNS]))
        info = mlflow.xgboost.log_model(
            model.get_booster(), name="model", signature=signature,
            # Given explicitly: inferring requirements re-imports the model and costs seconds.
            pip_requirements=[f"xgboost=={xgboost_version}"],
        )
        mlflow.set_tag("model_uri", info.model_uri)
        log.info("Logged model %s in MLflow run %s", info.model_uri, run.info.run_id)
    spark.stop()


if __name__ == "__main__":
    main()
