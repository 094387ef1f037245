"""A corrupt day stops the run at the validation gate: quarantined, no features, no model."""

from __future__ import annotations

import os
import subprocess
from datetime import date

import pytest
from mlflow import MlflowClient

from devtools.demo import run_dag
from flight_delays import ingest, partitions, settings
from flight_delays.layout import DATA_FILE, DataLayout
from flight_delays.publication import latest

pytestmark = pytest.mark.e2e
BAD_DAY = date(2013, 2, 10)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    return DataLayout.from_env()


def task_states(dag_run) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                 TaskInstance.run_id == dag_run.run_id).all()
        return {ti.task_id: str(ti.state) for ti in tis}


@pytest.mark.parametrize("engine", ["pandas", "spark"])
def test_corrupt_day_is_quarantined_and_nothing_downstream_runs(isolated, monkeypatch, engine):
    clean_rows = ingest.source_rows

    def extract_with_null_carriers(dataset, day):
        rows = clean_rows(dataset, day)
        if dataset == ingest.FLIGHTS and day == BAD_DAY:
            rows.loc[:9, "carrier"] = None
        return rows

    monkeypatch.setattr(ingest, "source_rows", extract_with_null_carriers)
    dag_run = run_dag(BAD_DAY, {"window_days": 7, "history_days": 3, "validation_engine": engine})

    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert (states["ingest"], states["validate"]) == ("success", "failed")
    # The validation SparkApplication ran (spark) or was skipped by the branch (pandas).
    validation_application = "success" if engine == "spark" else "skipped"
    assert (states["submit_validation"], states["wait_for_validation"]) == (validation_application,) * 2
    assert {states[t] for t in ("submit_features", "wait_for_features", "submit_training",
                                "wait_for_training", "register", "report")} == {"upstream_failed"}
    # The bad day failed (no reader takes it) and is copied to quarantine; the 9 earlier days it
    # bootstrapped are validated.
    assert partitions.state(latest(isolated.raw_partition("flights", BAD_DAY))) == partitions.FAILED
    quarantined = isolated.quarantine_partition("flights", BAD_DAY)
    assert sorted(latest(quarantined).files) == ["_validation.json", DATA_FILE]
    ingested = sorted(p.name for p in (isolated.root / "raw" / "flights").iterdir())
    assert ingested == [f"date=2013-02-{d:02d}" for d in range(1, 11)]
    assert all(partitions.state(latest(isolated.root / "raw" / "flights" / name)) == partitions.PASSED
               for name in ingested[:-1])
    assert not isolated.features.exists()
    assert not isolated.report(BAD_DAY).exists()
    assert MlflowClient(tracking_uri=settings.mlflow_tracking_uri()).search_registered_models() == []
