"""Register a trained model in the MLflow registry and give it the ``champion`` or ``challenger`` alias.

The new model becomes ``champion`` when there is none, or when it beats the current champion's
ROC-AUC on the *same* held-out data: the test days of the new model's run, scored here for both
models. Otherwise it is the ``challenger``. Registry stages are deprecated since MLflow 2.9 and are
not used.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from flight_delays.settings import DataLayout

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
#: MLflow run tag that names the SparkApplication that trained the model (set by spark_jobs/train.py).
APPLICATION_TAG = "spark_application"
LABEL_COLUMN = "is_delayed"


class TrainingRunNotFound(LookupError):
    """No MLflow run was logged by the given SparkApplication."""


@dataclass(frozen=True)
class Registration:
    """The outcome of registering one trained model."""

    model_name: str
    version: str
    alias: str
    run_id: str
    test_auc: float
    champion_version: str | None
    champion_test_auc: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def find_training_run(client: MlflowClient, experiment: str, application: str) -> Run:
    """The latest MLflow run of ``experiment`` logged by the SparkApplication ``application``."""
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
    return pd.concat([pd.read_parquet(layout.feature_partition(d)) for d in days], ignore_index=True)


def score_auc(model_uri: str, test: pd.DataFrame) -> float:
    """ROC-AUC of the model at ``model_uri`` on ``test``, using the columns of its signature."""
    import mlflow
    from sklearn.metrics import roc_auc_score

    model = mlflow.pyfunc.load_model(model_uri)
    columns = model.metadata.get_input_schema().input_names()
    return float(roc_auc_score(test[LABEL_COLUMN], model.predict(test[columns])))


def register_model(*, layout: DataLayout, tracking_uri: str, experiment: str, model_name: str,
                   application: str) -> Registration:
    """Register the model trained by ``application`` and set its alias.

    A retry after a crash reuses the version already registered for the same run.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run = find_training_run(client, experiment, application)
    model_uri = run.data.tags["model_uri"]
    test = read_test_set(layout, run)
    test_auc = score_auc(model_uri, test)

    try:
        champion = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:  # no such model yet, or no champion alias
        champion = None
    if champion is not None and champion.run_id == run.info.run_id:
        champion = None  # this run is already the champion: a retry after the alias was set
    champion_auc = None if champion is None else score_auc(f"models:/{model_name}/{champion.version}", test)

    existing = client.search_model_versions(f"name = '{model_name}' and run_id = '{run.info.run_id}'")
    if existing:
        version = existing[0]
    else:
        version = mlflow.register_model(
            model_uri, model_name,
            tags={APPLICATION_TAG: application, "window_end": run.data.params["window_end"]},
        )
    alias = CHAMPION if champion_auc is None or test_auc > champion_auc else CHALLENGER
    client.set_registered_model_alias(model_name, alias, version.version)
    client.set_model_version_tag(model_name, version.version, "test_auc_at_registration", f"{test_auc:.6f}")
    registration = Registration(
        model_name=model_name, version=str(version.version), alias=alias, run_id=run.info.run_id,
        test_auc=test_auc, champion_version=None if champion is None else str(champion.version),
        champion_test_auc=champion_auc,
    )
    log.info("Registered %s version %s as %s (test AUC %.4f; champion before: %s, AUC %s)",
             model_name, registration.version, alias, test_auc, registration.champion_version,
             "n/a" if champion_auc is None else f"{champion_auc:.4f}")
    return registration
