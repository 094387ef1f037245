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
    from flight_delays.ingest import ingest_day, ingest_reference

    if test_days >= window_days:
        raise ValueError(f"test_days ({test_days}) must be smaller than window_days ({window_days}): "
                         "the window needs at least one training day before the test days")
    layout = DataLayout.from_env()
    window = RunWindow.for_day(settings.source_day(logical_day), window_days=window_days,
                               history_days=history_days)
    if window.day != logical_day:
        log.info("Replay mode: logical date %s processes the flights of %s", logical_day, window.day)
    rows = {d.isoformat(): ingest_day(layout, d) for d in days_to_ingest(layout, window)}
    ingest_reference(layout)
    return {**window.as_dict(), "ingested_days": sorted(rows), "rows": rows[window.day.isoformat()]}


def days_to_ingest(layout: DataLayout, window: RunWindow) -> list[date]:
    """The run's own day, and the days of its window and history that are not ingested yet."""
    from flight_delays.ingest import is_ingested

    return [d for d in window.raw_days() if d == window.day or not is_ingested(layout, d)]


def validate(ingested: dict, *, engine: str = "pandas", application: str | None = None) -> dict:
    """The validation gate over every partition the ingest task wrote: fail on any critical expectation.

    With ``engine="pandas"`` the partitions are validated here; with ``"spark"`` the SparkApplication
    ``application`` has validated them, and its verdict file is judged here, with the same message.
    Bad data fails the task without retries (a retry would read the same data); errors of the
    machinery itself are retried as usual.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from flight_delays.validation import ENGINES, DataValidationError, PartitionValidator

    if engine not in ENGINES:
        raise ValueError(f"validation engine must be one of {ENGINES}, got {engine!r}")
    days = [date.fromisoformat(d) for d in ingested["ingested_days"]]
    layout = DataLayout.from_env()
    if engine == "spark":
        verdict = read_verdict(layout, date.fromisoformat(ingested["day"]), days, application)
    else:
        verdict = PartitionValidator(docs_dir=layout.data_docs).judge(layout, days, reference=True)
    try:
        verdict.raise_for_critical()
    except DataValidationError as exc:
        raise AirflowFailException(str(exc)) from exc
    return verdict.summary()


def read_verdict(layout: DataLayout, day: date, days: list[date], application: str | None):
    """The verdict the validation SparkApplication ``application`` wrote for the run of ``day``."""
    import json

    from flight_delays.validation import Verdict

    if not application:
        raise ValueError("validation engine 'spark' needs the name of the validation SparkApplication")
    path = layout.verdict(day)
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"SparkApplication {application} left no verdict at {path}") from None
    if summary.get("application") != application:
        raise ValueError(f"the verdict at {path} is from SparkApplication {summary.get('application')!r}, "
                         f"not from {application!r}: it belongs to another run")
    missing = sorted({d.isoformat() for d in days} - set(summary.get("days", [])))
    if missing:
        raise ValueError(f"the verdict at {path} does not cover the ingested day(s) {missing}")
    return Verdict.from_summary(summary)


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
