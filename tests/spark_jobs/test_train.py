from __future__ import annotations

import math
from datetime import date

import pytest
from pyspark.sql import Row

from flight_delays import contract, partitions, registry
from flight_delays.layout import DATA_FILE, DataLayout
from flight_delays.publication import publish
from spark_jobs import features as features_job
from spark_jobs import train
from spark_jobs.train import (
    SPLIT,
    input_verdicts,
    parse_args,
    sample_training,
    time_split,
    with_missing_as_nan,
)


def test_time_split_is_train_then_validation_then_test(spark):
    frame = spark.createDataFrame([Row(date=date(2013, 6, d), x=d) for d in range(1, 8)])
    split = time_split(frame, end=date(2013, 6, 7), validation_days=2, test_days=3)
    parts = {(r.x, r[SPLIT]) for r in split.collect()}
    assert parts == {(1, "train"), (2, "train"), (3, "validation"), (4, "validation"),
                     (5, "test"), (6, "test"), (7, "test")}


def test_sampling_thins_the_training_days_only_and_is_seeded(spark):
    frame = spark.createDataFrame([Row(date=date(2013, 6, 1 + i % 10), x=i) for i in range(2000)])
    split = time_split(frame, end=date(2013, 6, 10), validation_days=2, test_days=2)
    counts = dict(split.groupBy(SPLIT).count().collect())
    assert counts == {"train": 1200, "validation": 400, "test": 400}
    assert sample_training(split, 1.0) is split

    sampled = sample_training(split, 0.25)
    sampled_counts = dict(sampled.groupBy(SPLIT).count().collect())
    assert (sampled_counts["validation"], sampled_counts["test"]) == (400, 400)
    assert 240 <= sampled_counts["train"] <= 360  # 300 expected; binomial sd 15
    rows = sorted(r.x for r in sampled.where(f"{SPLIT} = 'train'").collect())
    assert rows == sorted(r.x for r in sample_training(split, 0.25).where(f"{SPLIT} = 'train'").collect())
    with pytest.raises(ValueError, match=r"sample fraction must be in \(0, 1\], got 0"):
        sample_training(split, 0)


def test_input_verdicts_are_the_gate_verdicts_of_the_window(tmp_path):
    data = DataLayout.for_job(str(tmp_path))
    validated = {"state": "passed", "validated_at": "2013-06-02T00:00:00+00:00", "warnings": []}
    for dataset, day in (("flights", 1), ("weather", 1), ("flights", 2), ("weather", 2)):
        verdict = {} if (dataset, day) == ("weather", 2) else {partitions.VALIDATION: validated}
        publish(data.raw_partition(dataset, date(2013, 6, day)), {DATA_FILE: b"PAR1"}, writer="test",
                meta={"rows": 1, **verdict})
    verdicts = input_verdicts(str(tmp_path), date(2013, 6, 1), date(2013, 6, 2))
    assert verdicts == {"flights/2013-06-01": validated, "weather/2013-06-01": validated,
                        "flights/2013-06-02": validated, "weather/2013-06-02": {"missing": True},
                        "planes/reference": {"missing": True}}


def test_missing_features_become_nan(spark):
    frame = spark.createDataFrame(
        [Row(**{c: None for c in features_job.FEATURE_COLUMNS}, date=date(2013, 6, 1))],
        features_job.FEATURES_SCHEMA.fromJson({"type": "struct", "fields": [
            f.jsonValue() for f in features_job.FEATURES_SCHEMA.fields
            if f.name in (*features_job.FEATURE_COLUMNS, "date")]}),
    )
    row = with_missing_as_nan(frame).first()
    assert all(math.isnan(row[c]) for c in features_job.FEATURE_COLUMNS)


def test_window_must_leave_training_days(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--data-root", "/d", "--start-date", "2013-06-01", "--end-date", "2013-06-06",
                    "--test-days", "3", "--validation-days", "3", "--mlflow-tracking-uri", "sqlite://",
                    "--mlflow-experiment", "e"])
    assert ("window 2013-06-01..2013-06-06 (6 days) leaves 0 training day(s) with --validation-days 3 "
            "and --test-days 3" in capsys.readouterr().err)


def test_registry_and_training_job_read_the_one_model_contract():
    assert registry.APPLICATION_TAG is train.APPLICATION_TAG is contract.APPLICATION_TAG
    assert contract.APPLICATION_TAG == "spark_application"
    assert registry.LABEL_COLUMN is features_job.LABEL_COLUMN is contract.LABEL_COLUMN == "is_delayed"


def test_xgboost_fits_with_early_stopping_on_small_arrow_batches(spark):
    # Small Arrow batches stand in for big days: xgboost 3.2's loader fails on a batch without
    # validation rows unless the job mixes them (regression: KeyError 'values').
    import argparse

    import numpy as np
    import pandas as pd

    from spark_jobs.train import fit_xgboost

    rng = np.random.default_rng(5)
    frames = []
    for day in range(1, 11):
        frame = pd.DataFrame(rng.uniform(0, 1, size=(300, len(features_job.FEATURE_COLUMNS))),
                             columns=list(features_job.FEATURE_COLUMNS))
        frame[contract.LABEL_COLUMN] = (frame["visib"] + rng.normal(0, 0.2, 300) < 0.5).astype("int32")
        frame["carrier"] = "AA"
        frame["date"] = date(2013, 6, day)
        frames.append(frame)
    features = spark.createDataFrame(pd.concat(frames, ignore_index=True))
    split = time_split(features, end=date(2013, 6, 10), validation_days=3, test_days=2)
    args = argparse.Namespace(n_estimators=200, max_depth=3, learning_rate=0.3, device="cpu", num_workers=2,
                              early_stopping_rounds=5)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "100")
    try:
        booster, predictions, params, importance = fit_xgboost(split, args)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert len(predictions) == 600
    assert list(predictions.columns) == [contract.LABEL_COLUMN, "carrier", "p_delayed"]
    assert params["best_iteration"] < 195  # stopped early
    assert booster.num_boosted_rounds() == params["best_iteration"] + 1  # the logged model is the best one
    assert max(importance, key=importance.get) == "visib"
