from __future__ import annotations

import math
from datetime import date

import pytest
from pyspark.sql import Row

from flight_delays import registry
from spark_jobs import features as features_job
from spark_jobs import train
from spark_jobs.train import evaluate, parse_args, time_split, with_missing_as_nan


def test_time_split_holds_out_the_last_days(spark):
    frame = spark.createDataFrame([Row(date=date(2013, 6, d), x=d) for d in range(1, 6)])
    train_part, test_part = time_split(frame, end=date(2013, 6, 5), test_days=2)
    assert sorted(r.x for r in train_part.collect()) == [1, 2, 3]
    assert sorted(r.x for r in test_part.collect()) == [4, 5]


def test_evaluate_gives_the_test_metrics(spark):
    predictions = spark.createDataFrame([
        Row(is_delayed=1, p_delayed=0.9), Row(is_delayed=0, p_delayed=0.1),
        Row(is_delayed=1, p_delayed=0.8), Row(is_delayed=0, p_delayed=0.3),
    ])
    metrics = evaluate(predictions)
    assert metrics == pytest.approx({
        "test_auc": 1.0,
        "test_pr_auc": 1.0,
        # -(ln 0.9 + ln 0.9 + ln 0.8 + ln 0.7) / 4
        "test_log_loss": 0.1976349,
        # (0.01 + 0.01 + 0.04 + 0.09) / 4
        "test_brier": 0.0375,
        "test_positive_rate": 0.5,
        "test_rows": 4.0,
    }, rel=1e-6)


def test_missing_features_become_nan(spark):
    frame = spark.createDataFrame(
        [Row(**{c: None for c in features_job.FEATURE_COLUMNS}, date=date(2013, 6, 1))],
        features_job.FEATURES_SCHEMA.fromJson({"type": "struct", "fields": [
            f.jsonValue() for f in features_job.FEATURES_SCHEMA.fields
            if f.name in (*features_job.FEATURE_COLUMNS, "date")]}),
    )
    row = with_missing_as_nan(frame).first()
    assert all(math.isnan(row[c]) for c in features_job.FEATURE_COLUMNS)


def test_window_must_leave_training_days():
    with pytest.raises(SystemExit):
        parse_args(["--data-root", "/d", "--start-date", "2013-06-01", "--end-date", "2013-06-03",
                    "--test-days", "3", "--mlflow-tracking-uri", "sqlite://", "--mlflow-experiment", "e"])


def test_registry_and_training_job_agree_on_their_contract():
    assert registry.APPLICATION_TAG == train.APPLICATION_TAG
    assert registry.LABEL_COLUMN == features_job.LABEL_COLUMN
