"""The whole DAG through ``dag.test()`` on the embedded default: real Airflow tasks, local
``spark-submit``, Great Expectations and an MLflow SQLite store, on the real 2013 flights."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date

import pandas as pd
import pytest
from mlflow import MlflowClient

from flight_delays import settings
from flight_delays.demo import run_dag
from flight_delays.manifests import render_run
from flight_delays.settings import DataLayout
from sparkapp.local_backend import LocalSparkApplicationClient

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def airflow_db():
    subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)


def without_pod_labels(spec: dict) -> dict:
    return {**spec, **{role: {k: v for k, v in spec[role].items() if k != "labels"}
                       for role in ("driver", "executor")}}


def report_of(day: date) -> dict:
    return json.loads(DataLayout.from_env().report(day).read_text())


def test_nightly_runs_train_and_register_on_real_data(airflow_db):
    layout = DataLayout.from_env()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri())

    first = run_dag(date(2013, 6, 30))
    assert first.state == "success"
    report = report_of(date(2013, 6, 30))
    # An empty data root: the first run ingests its day plus 27 window days and 14 history days.
    assert (report["rows_ingested"], report["days_ingested"]) == ({"flights": 918, "weather": 72}, 42)
    assert report["validation"] == {"partitions": 85, "passed": True, "critical_failures": 0,
                                    "warnings": 0, "failures": [], "quarantined": [],
                                    "data_docs": str(layout.data_docs / "index.html")}
    assert len(list(layout.data_docs.glob("validations/**/*.html"))) == 85
    assert 700 <= report["feature_rows"] <= 918  # flights of the day that arrived
    assert 0.65 <= report["test_metrics"]["test_auc"] <= 0.90
    assert report["model"]["version"] == "1" and report["model"]["alias"] == "champion"
    assert int(client.get_model_version_by_alias(settings.MODEL_NAME, "champion").version) == 1
    assert len(list(layout.features.glob("date=*"))) == 28
    # `make manifests` previews exactly the specs the run submitted (pod labels name the run).
    applications = LocalSparkApplicationClient()
    for manifest in render_run(date(2013, 6, 30)).values():
        submitted = applications.get_application(manifest["metadata"]["name"], "default")
        assert without_pod_labels(submitted["spec"]) == without_pod_labels(manifest["spec"])
        assert submitted["status"]["applicationState"] == {"state": "COMPLETED"}

    second = run_dag(date(2013, 7, 1))
    assert second.state == "success"
    report = report_of(date(2013, 7, 1))
    # The next night only ingests its own day: the window's history is there.
    assert report["days_ingested"] == 1 and report["validation"]["partitions"] == 3
    assert report["model"]["version"] == "2" and report["model"]["champion_version"] == "1"
    assert report["model"]["alias"] == ("champion" if report["model"]["test_auc"] >
                                        report["model"]["champion_test_auc"] else "challenger")
    aliases = client.get_registered_model(settings.MODEL_NAME).aliases
    assert aliases[report["model"]["alias"]] == 2 and "champion" in aliases

    # The partitions of the first night were not duplicated by the second.
    flights = pd.read_parquet(layout.raw_partition("flights", date(2013, 6, 30)))
    assert len(flights) == 918
    assert len(pd.read_parquet(layout.feature_partition(date(2013, 6, 30)))) == len(
        pd.read_parquet(layout.feature_partition(date(2013, 6, 30))).drop_duplicates())
