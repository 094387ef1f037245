"""The data root's layout: one definition of every folder and file name under it.

::

    <root>/raw/<dataset>/date=YYYY-MM-DD/data.parquet        one day of flights or weather
    <root>/raw/<dataset>/date=YYYY-MM-DD/_validation.json    its Great Expectations result
    <root>/raw/<dataset>/date=YYYY-MM-DD/_VALIDATED          marker: passed every critical expectation
    <root>/quarantine/<dataset>/date=YYYY-MM-DD/             a partition that failed, with its result
    <root>/data_docs/index.html                              GX Data Docs of every validation
    <root>/reference/planes/data.parquet                     reference data (whole table)
    <root>/features/date=YYYY-MM-DD/part-*.parquet           features of one day (Spark)
    <root>/verdicts/date=YYYY-MM-DD/verdict.json             the validation SparkApplication's verdict
    <root>/reports/date=YYYY-MM-DD/report.json               the run's summary

Paths under the root are ``/``-joined keys (``*_key`` functions), so the same names serve a local
folder (:class:`DataLayout`, for the Airflow tasks) and a Spark job's data root (:func:`under`), which
may be an object-store URI that :mod:`pathlib` would mangle. Only names live here: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date

FLIGHTS = "flights"
WEATHER = "weather"
PLANES = "planes"
#: The datasets ingested one partition a day; planes is a reference table, ingested whole.
DAILY_DATASETS = (FLIGHTS, WEATHER)

#: The one file of a raw partition or reference table (written atomically by the ingest task).
DATA_FILE = "data.parquet"
#: The Great Expectations result written beside a validated partition.
RESULT_FILE = "_validation.json"
#: Written into a raw partition that passed every critical expectation: the feature job reads only those.
VALIDATED_MARKER = "_VALIDATED"
#: Files of a partition that validation writes (a new ingest of the partition removes them).
VALIDATION_FILES = (VALIDATED_MARKER, RESULT_FILE)
REPORT_FILE = "report.json"
VERDICT_FILE = "verdict.json"

RAW = "raw"
REFERENCE = "reference"
FEATURES = "features"
QUARANTINE = "quarantine"
DATA_DOCS = "data_docs"
VERDICTS = "verdicts"
REPORTS = "reports"


def partition(day: date) -> str:
    """The Hive-style name of a day's partition folder: ``date=YYYY-MM-DD``."""
    return f"date={day.isoformat()}"


def raw_partition_key(dataset: str, day: date) -> str:
    return f"{RAW}/{dataset}/{partition(day)}"


def reference_key(dataset: str) -> str:
    return f"{REFERENCE}/{dataset}"


def feature_partition_key(day: date) -> str:
    return f"{FEATURES}/{partition(day)}"


def quarantine_partition_key(dataset: str, day: date) -> str:
    return f"{QUARANTINE}/{dataset}/{partition(day)}"


def quarantine_reference_key(dataset: str) -> str:
    return f"{QUARANTINE}/{dataset}/{REFERENCE}"


def verdict_key(day: date) -> str:
    return f"{VERDICTS}/{partition(day)}/{VERDICT_FILE}"


def report_key(day: date) -> str:
    return f"{REPORTS}/{partition(day)}/{REPORT_FILE}"


def under(root: str, path: str) -> str:
    """``path`` (relative to the data root) under ``root``, a local folder or an object-store URI."""
    return f"{root.rstrip('/')}/{path}"


@dataclass(frozen=True)
class DataLayout:
    """Where each kind of data lives under a local data root (see the module's docstring)."""

    root: Path

    @classmethod
    def from_env(cls) -> DataLayout:
        from flight_delays import settings

        return cls(Path(settings.data_root()))

    def raw_partition(self, dataset: str, day: date) -> Path:
        return self.root / raw_partition_key(dataset, day)

    def reference(self, dataset: str) -> Path:
        return self.root / reference_key(dataset)

    @property
    def features(self) -> Path:
        return self.root / FEATURES

    def feature_partition(self, day: date) -> Path:
        return self.root / feature_partition_key(day)

    def quarantine_partition(self, dataset: str, day: date) -> Path:
        """Where a partition that failed validation is moved, with its result."""
        return self.root / quarantine_partition_key(dataset, day)

    @property
    def data_docs(self) -> Path:
        """The Great Expectations Data Docs site (``index.html`` links every validation)."""
        return self.root / DATA_DOCS

    def quarantine_reference(self, dataset: str) -> Path:
        """Where a reference table that failed validation is moved, with its result."""
        return self.root / quarantine_reference_key(dataset)

    def verdict(self, day: date) -> Path:
        """The validation verdict of the run of ``day``, when validation runs as a SparkApplication."""
        return self.root / verdict_key(day)

    def report(self, day: date) -> Path:
        return self.root / report_key(day)
