"""What the DAG's Python tasks do, kept out of the DAG file so that it reads like configuration.

Each function takes plain values and returns a JSON-able dict (the task's XCom).
"""

from __future__ import annotations

import logging
from datetime import date

from flight_delays import settings
from flight_delays.settings import DataLayout, RunWindow

log = logging.getLogger(__name__)


def ingest(logical_day: date, *, window_days: int, history_days: int, test_days: int) -> dict:
    """Ingest the run's day, plus any day of the window or its history that is not ingested yet.

    The run's own day is always rewritten (a rerun replaces it); earlier days are only filled in
    when missing, so the first run on an empty data root has the history it trains on.
    """
    from flight_delays.ingest import ingest_day, ingest_reference, is_ingested

    if test_days >= window_days:
        raise ValueError(f"test_days ({test_days}) must be smaller than window_days ({window_days}): "
                         "the window needs at least one training day before the test days")
    layout = DataLayout.from_env()
    window = RunWindow.for_day(settings.source_day(logical_day), window_days=window_days,
                               history_days=history_days)
    if window.day != logical_day:
        log.info("Replay mode: logical date %s processes the flights of %s", logical_day, window.day)
    ingested = [d for d in window.raw_days() if d == window.day or not is_ingested(layout, d)]
    rows = {d.isoformat(): ingest_day(layout, d) for d in ingested}
    ingest_reference(layout)
    return {**window.as_dict(), "ingested_days": sorted(rows), "rows": rows[window.day.isoformat()]}


def validate(ingested: dict) -> dict:
    """Validate every partition the ingest task wrote; fail on any critical expectation.

    Bad data fails the task without retries (a retry would read the same data); errors of the
    machinery itself are retried as usual.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from flight_delays.validation import DataValidationError, PartitionValidator

    days = [date.fromisoformat(d) for d in ingested["ingested_days"]]
    layout = DataLayout.from_env()
    try:
        validator = PartitionValidator(docs_dir=layout.data_docs)
        return validator.validate_days(layout, days, reference=True).summary()
    except DataValidationError as exc:
        raise AirflowFailException(str(exc)) from exc


def register(application: str) -> dict:
    """Register the model trained by the SparkApplication ``application``; return the outcome."""
    from flight_delays.registry import register_model

    registration = register_model(
        layout=DataLayout.from_env(), tracking_uri=settings.mlflow_tracking_uri(),
        experiment=settings.EXPERIMENT_NAME, model_name=settings.MODEL_NAME, application=application,
    )
    return registration.as_dict()


def report(ingested: dict, verdict: dict, registration: dict) -> dict:
    """Summarise the run, write it to the data root's ``reports/`` and return it."""
    import mlflow
    import pyarrow.parquet as pq

    from flight_delays.ingest import write_json_atomically

    layout = DataLayout.from_env()
    day = date.fromisoformat(ingested["day"])
    feature_files = sorted(layout.features.glob(f"date={day.isoformat()}/*.parquet"))
    run = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri()).get_run(registration["run_id"])
    summary = {
        "day": ingested["day"],
        "rows_ingested": ingested["rows"],
        "days_ingested": len(ingested["ingested_days"]),
        "validation": verdict,
        "feature_rows": sum(pq.ParquetFile(f).metadata.num_rows for f in feature_files),
        "test_metrics": {k: v for k, v in sorted(run.data.metrics.items()) if k.startswith("test_")},
        "model": registration,
    }
    write_json_atomically(summary, layout.report(day))
    log.info("Run report for %s: %s", day, summary)
    return summary
