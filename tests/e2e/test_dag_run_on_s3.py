"""The whole DAG (``dag.test()``, local backend) on an ``s3://`` data root on the real S3-compatible
server: every stage reads and writes the object store (ingest, the Spark validation, features,
training, the report), the keys only in the Airflow connection; nothing of the run is on disk."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date

import pytest
from mlflow import MlflowClient

from devtools.demo import run_dag
from flight_delays import contract, partitions, settings
from flight_delays.layout import DataLayout
from flight_delays.publication import latest
from flight_delays.report import RunReport
from testing.object_store import LocalObjectStore

pytestmark = pytest.mark.e2e
BUCKET = "flight-delays"
DAY = date(2013, 6, 30)
CONF = {"window_days": 10, "history_days": 3, "test_days": 2, "validation_days": 2, "n_estimators": 20,
        "validation_engine": "spark"}


def test_the_dag_runs_end_to_end_on_an_s3_data_root(tmp_path, monkeypatch):
    subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)
    with LocalObjectStore(tmp_path / "seaweedfs") as store:
        store.create_bucket(BUCKET)
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            monkeypatch.delenv(name)
        # A connection id of its own: Airflow caches a store's filesystem by id for the whole process.
        monkeypatch.setenv("AIRFLOW_CONN_DAG_RUN_ON_S3_STORAGE", json.dumps(store.connection()))
        monkeypatch.setenv("FLIGHT_DELAYS_STORAGE_CONN_ID", "dag_run_on_s3_storage")
        monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", f"s3://{BUCKET}/lake")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))

        dag_run = run_dag(DAY, CONF)

        assert dag_run.state == "success"
        layout = DataLayout.from_env()
        report = RunReport.read(layout, DAY)
        # A first run: its day, 9 more window days and 3 history days, each validated by the Spark job.
        assert (report.days_ingested, report.validation["partitions"], report.validation["passed"]) == (
            13, 27, True)
        assert report.validation["data_docs"] == f"s3://{BUCKET}/lake/data_docs/index.html"
        assert report.model["version"] == "1" and report.model["alias"] == "champion"
        stored = {o["Key"] for page in store.client().get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix="lake/") for o in page.get("Contents", [])}
        for day in range(21, 31):  # the window's features, published on S3
            folder = layout.feature_partition(date(2013, 6, day))
            assert partitions.feature_files(folder), folder
            assert f"lake/features/date=2013-06-{day}/_manifests/00000001.json" in stored
        assert partitions.state(latest(layout.raw_partition("flights", DAY))) == partitions.PASSED
        assert "lake/data_docs/index.html" in stored
        assert f"lake/reports/date={DAY}/report.json" in stored
        assert not (tmp_path / "lake").exists() and not any(
            p.name == "raw" for p in tmp_path.rglob("raw"))  # nothing of the data root went to disk
        model = MlflowClient(tracking_uri=settings.mlflow_tracking_uri()).get_model_version_by_alias(
            contract.MODEL_NAME, "champion")
        assert int(model.version) == 1
