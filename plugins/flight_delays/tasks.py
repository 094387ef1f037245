"""What the DAG's Python tasks do, kept out of the DAG file so that it reads like configuration.

Each function takes plain values and returns a JSON-able dict (the task's XCom).
"""

from __future__ import annotations

import logging
from datetime import date

from flight_delays import contract, settings
from flight_delays.layout import DataLayout
from flight_delays.window import days_to_ingest, feature_plan, ingest_plan, run_window

log = logging.getLogger(__name__)


def preflight(day: date, params: dict, *, backfill: bool) -> dict:
    """Check the run before it does anything (:mod:`flight_delays.preflight`); return its plan.

    A request that cannot work fails the task without retries; an unreachable service is retried.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from flight_delays.preflight import BadRunRequest, check_run
    from sparkapp.backends import resolve_backend

    try:
        plan = check_run(day, params, backfill=backfill, backend=resolve_backend(None),
                         namespace=settings.spark_namespace())
    except BadRunRequest as exc:
        raise AirflowFailException(str(exc)) from exc
    return plan.as_dict()


def ingest(logical_day: date, *, train: bool, window_days: int, history_days: int) -> dict:
    """Ingest the run's day, plus any day of the window or its history that is not ingested yet.

    The run's own day is always rewritten (a rerun replaces it); earlier days are only filled in
    when missing, so the first run on an empty data root has the history it trains on. A run that
    does not train (a backfill's, by default) needs its own day's features only: its window is that
    day, and only the history behind it is filled in.
    """
    from flight_delays.ingest import ingest_day, ingest_reference

    layout = DataLayout.from_env()
    window = run_window(logical_day, train=train, window_days=window_days, history_days=history_days)
    if window.day != logical_day:
        log.info("Replay mode: logical date %s processes the flights of %s", logical_day, window.day)
    days = days_to_ingest(layout, window)
    rows = {d.isoformat(): ingest_day(layout, d) for d in days}
    ingest_reference(layout)
    features = feature_plan(layout, window, days, history_days)
    log.info("Features to compute: %s..%s (window %s..%s)", features["feature_start"], window.day,
             window.train_start, window.day)
    return {**ingest_plan(window, days, features), "rows": rows[window.day.isoformat()]}


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
    """Register the model trained by the SparkApplication ``application`` (once per training run)."""
    from flight_delays.registry import register_model

    registration = register_model(tracking_uri=settings.mlflow_tracking_uri(),
                                  experiment=contract.EXPERIMENT_NAME, model_name=contract.MODEL_NAME,
                                  application=application)
    return registration.as_dict()


def promote(registration: dict, *, policy: str, margin: float, reason: str, requested_by: str | None,
            backfill: bool) -> dict:
    """The promotion gate: ``champion`` or ``challenger`` for the registered version, with the reason.

    A wrong request (``force`` without a reason) fails the task without retries.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from flight_delays.registry import PromotionRequest, PromotionRequestError
    from flight_delays.registry import promote as promote_version

    request = PromotionRequest(policy=policy, margin=margin, reason=reason, requested_by=requested_by,
                               backfill=backfill)
    try:
        request.check()
    except PromotionRequestError as exc:
        raise AirflowFailException(str(exc)) from exc
    decision = promote_version(layout=DataLayout.from_env(), tracking_uri=settings.mlflow_tracking_uri(),
                               model_name=registration["model_name"], version=registration["version"],
                               request=request)
    return decision.as_dict()


def report(ingested: dict, verdict: dict, registration: dict | None, decision: dict | None,
           costs: dict[str, dict | None] | None = None) -> dict:
    """Summarise the run (:meth:`flight_delays.report.RunReport.build`), write it under the data root
    and return it; the training's MLflow run gets the cost inputs as metrics."""
    from flight_delays.report import RunReport

    summary = RunReport.build(DataLayout.from_env(), ingested, verdict, registration, decision,
                              costs=costs, tracking_uri=settings.mlflow_tracking_uri())
    summary.write(DataLayout.from_env())
    log.info("Run report for %s: %s", summary.day, summary.as_dict())
    return summary.as_dict()
