"""The MLflow model registry: register a trained model, then decide whether it becomes ``champion``.

Two steps, two tasks, each safe to retry:

- :func:`register_model` registers the model of the training run that a SparkApplication logged. A
  retry finds the version already registered for that run (by its ``run_id``) instead of creating a
  second one.
- :func:`promote` is the promotion gate. The new version and the current ``champion`` are scored on
  the *same* held-out days (the new run's test days) with :mod:`flight_delays.evaluation`. Under the
  ``auto`` policy the new version becomes ``champion`` only if its ROC-AUC beats the champion's by
  ``margin`` and no guard metric (log loss, Brier score) gets worse by more than its tolerance;
  otherwise it gets ``challenger``. ``never`` always gives ``challenger``; ``force`` gives
  ``champion`` and records who asked and why. Runs of a backfill never move ``champion``. Every
  decision is written as ``promotion.*`` tags on the model version.

Aliases only: registry stages are deprecated since MLflow 2.9 and are not used.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from flight_delays.layout import DataLayout

from flight_delays.contract import APPLICATION_TAG, LABEL_COLUMN
from flight_delays.partitions import feature_files

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
POLICIES = ("auto", "never", "force")
PRIMARY_METRIC = "auc"
#: Guard metrics (lower is better) and how much worse than the champion's they may be under ``auto``.
GUARD_TOLERANCES = {"log_loss": 0.01, "brier": 0.005}
TAG_PREFIX = "promotion."


class TrainingRunNotFound(LookupError):
    """No MLflow run was logged by the given SparkApplication."""


class PromotionRequestError(ValueError):
    """The promotion request itself is wrong (unknown policy, force without a reason...)."""


@dataclass(frozen=True)
class Registration:
    """A registered model version and the training run it comes from."""

    model_name: str
    version: str
    run_id: str
    application: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PromotionRequest:
    """How the gate decides: the run's policy and who triggered it.

    :param policy: one of :data:`POLICIES`.
    :param margin: ROC-AUC the new version must gain over the champion (``auto``).
    :param reason: why, required with ``force``.
    :param requested_by: the user who triggered the run, recorded with ``force``.
    :param backfill: the run is part of a backfill: ``champion`` does not move.
    """

    policy: str = "auto"
    margin: float = 0.002
    reason: str = ""
    requested_by: str | None = None
    backfill: bool = False

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise PromotionRequestError(f"promotion policy must be one of {POLICIES}, got {self.policy!r}")
        if not 0 <= self.margin <= 1:
            raise PromotionRequestError(f"promotion margin must be between 0 and 1, got {self.margin!r}")
        if self.policy == "force" and not self.reason.strip():
            raise PromotionRequestError("promotion policy 'force' needs a reason (param promotion_reason): "
                                        "it is recorded on the model version with who forced it")


@dataclass(frozen=True)
class Decision:
    """What the gate decided for one model version, and why."""

    model_name: str
    version: str
    alias: str
    reason: str
    policy: str
    scores: dict[str, float]
    champion_version: str | None
    champion_scores: dict[str, float] | None

    def as_dict(self) -> dict:
        return asdict(self)


def decide(scores: dict[str, float], champion: dict[str, float] | None,
           request: PromotionRequest) -> tuple[str, str]:
    """The alias the new version gets and the reason, from both models' scores on the same days."""
    if request.backfill:
        return CHALLENGER, "backfill runs never move champion"
    if request.policy == "never":
        return CHALLENGER, "policy never: registered without promotion"
    if request.policy == "force":
        return CHAMPION, f"forced by {request.requested_by or 'an unknown user'}: {request.reason.strip()}"
    if champion is None:
        return CHAMPION, "no champion yet"
    gain = scores[PRIMARY_METRIC] - champion[PRIMARY_METRIC]
    if gain < request.margin:
        return CHALLENGER, (f"{PRIMARY_METRIC} {scores[PRIMARY_METRIC]:.4f} vs champion "
                            f"{champion[PRIMARY_METRIC]:.4f}: gain {gain:+.4f} below the margin "
                            f"{request.margin}")
    for metric, tolerance in GUARD_TOLERANCES.items():
        regression = scores[metric] - champion[metric]
        if regression > tolerance:
            return CHALLENGER, (f"{metric} {scores[metric]:.4f} vs champion {champion[metric]:.4f}: "
                                f"worse by {regression:.4f}, more than the tolerance {tolerance}")
    return CHAMPION, (f"{PRIMARY_METRIC} {scores[PRIMARY_METRIC]:.4f} beats champion "
                      f"{champion[PRIMARY_METRIC]:.4f} by {gain:+.4f} (margin {request.margin}); "
                      "guard metrics within tolerance")


def find_training_run(client: MlflowClient, experiment: str, application: str) -> Run:
    """The latest finished MLflow run of ``experiment`` logged by the SparkApplication ``application``."""
    found = client.get_experiment_by_name(experiment)
    runs = [] if found is None else client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.{APPLICATION_TAG} = '{application}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise TrainingRunNotFound(
            f"no finished MLflow run tagged {APPLICATION_TAG}={application} in experiment {experiment!r}"
        )
    return runs[0]


def read_test_set(layout: DataLayout, run: Run) -> pd.DataFrame:
    """The feature rows of the run's test days (``params.test_start`` .. ``params.window_end``)."""
    import pandas as pd

    first = date.fromisoformat(run.data.params["test_start"])
    last = date.fromisoformat(run.data.params["window_end"])
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    def read(part) -> pd.DataFrame:
        with part.open("rb") as data:
            return pd.read_parquet(data)

    parts = [part for day in days for part in feature_files(layout.feature_partition(day))]
    return pd.concat([read(part) for part in parts], ignore_index=True)


def score(model_uri: str, test: pd.DataFrame) -> dict[str, float]:
    """The metrics of the model at ``model_uri`` on ``test``, fed the columns of its signature."""
    import mlflow

    from flight_delays.evaluation import binary_metrics

    model = mlflow.pyfunc.load_model(model_uri)
    columns = model.metadata.get_input_schema().input_names()
    return binary_metrics(test[LABEL_COLUMN], model.predict(test[columns]))


def _client(tracking_uri: str) -> MlflowClient:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def register_model(*, tracking_uri: str, experiment: str, model_name: str, application: str) -> Registration:
    """Register the model trained by ``application``; a retry reuses the version of the same run."""
    import mlflow

    client = _client(tracking_uri)
    run = find_training_run(client, experiment, application)
    existing = client.search_model_versions(f"name = '{model_name}' and run_id = '{run.info.run_id}'")
    if existing:
        version = existing[0]
        log.info("%s version %s is already registered for run %s: reused", model_name, version.version,
                 run.info.run_id)
    else:
        version = mlflow.register_model(
            run.data.tags["model_uri"], model_name,
            tags={APPLICATION_TAG: application, "window_end": run.data.params["window_end"],
                  "trainer": run.data.tags.get("trainer", "xgboost")},
        )
        log.info("Registered %s version %s from run %s", model_name, version.version, run.info.run_id)
    return Registration(model_name=model_name, version=str(version.version), run_id=run.info.run_id,
                        application=application)


def current_champion(client: MlflowClient, model_name: str):
    """The version holding ``champion``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def promote(*, layout: DataLayout, tracking_uri: str, model_name: str, version: str,
            request: PromotionRequest) -> Decision:
    """Score ``version`` and the champion on the same test days, decide, set the alias, tag the decision."""
    request.check()
    client = _client(tracking_uri)
    candidate = client.get_model_version(model_name, version)
    run = client.get_run(candidate.run_id)
    test = read_test_set(layout, run)
    scores = score(f"models:/{model_name}/{version}", test)

    champion = current_champion(client, model_name)
    if champion is not None and str(champion.version) == str(version):
        # A retry after the alias was set: the decision stands (its tags too, when they were written).
        decision = Decision(model_name, str(version), CHAMPION, "already champion (a retry of the same run)",
                            request.policy, scores, None, None)
        if f"{TAG_PREFIX}verdict" not in candidate.tags:
            for key, value in decision_tags(decision, request).items():
                client.set_model_version_tag(model_name, version, key, value)
        log.info("%s version %s is already champion", model_name, version)
        return decision
    champion_scores = None if champion is None else score(f"models:/{model_name}/{champion.version}", test)
    alias, reason = decide(scores, champion_scores, request)
    client.set_registered_model_alias(model_name, alias, version)
    decision = Decision(model_name=model_name, version=str(version), alias=alias, reason=reason,
                        policy=request.policy, scores=scores,
                        champion_version=None if champion is None else str(champion.version),
                        champion_scores=champion_scores)
    for key, value in decision_tags(decision, request).items():
        client.set_model_version_tag(model_name, version, key, value)
    log.info("%s version %s -> %s: %s", model_name, version, alias, reason)
    return decision


def decision_tags(decision: Decision, request: PromotionRequest) -> dict[str, str]:
    """The ``promotion.*`` tags that record a decision on its model version."""
    tags = {
        "verdict": decision.alias,
        "reason": decision.reason,
        "policy": request.policy,
        "margin": str(request.margin),
        "primary_metric": PRIMARY_METRIC,
        "guard_tolerances": ",".join(f"{m}={t}" for m, t in GUARD_TOLERANCES.items()),
        "backfill": str(request.backfill).lower(),
        "champion_version": decision.champion_version or "",
        "decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tags.update({f"candidate_{m}": f"{v:.6f}" for m, v in decision.scores.items()})
    tags.update({f"champion_{m}": f"{v:.6f}" for m, v in (decision.champion_scores or {}).items()})
    if request.policy == "force":
        tags.update(requested_by=request.requested_by or "", request_reason=request.reason.strip())
    return {TAG_PREFIX + key: value for key, value in tags.items()}


def mlflow_run_url(run_id: str) -> str | None:
    """The page of an MLflow run in the MLflow UI, or None without a UI address
    (:func:`flight_delays.settings.mlflow_ui_url`)."""
    from flight_delays import settings

    base = settings.mlflow_ui_url()
    if base is None:
        return None
    import mlflow

    run = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri()).get_run(run_id)
    return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
