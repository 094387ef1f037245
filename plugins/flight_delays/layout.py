"""The data root's layout: one definition of every folder and file name under it.

::

    <root>/raw/<dataset>/date=YYYY-MM-DD/                    one day of flights or weather, published:
        _manifests/<version>.json                            the current files, rows, the gate's verdict
        <token>-data.parquet                                 the data a manifest names
        <token>-_validation.json                             its Great Expectations result
    <root>/quarantine/<dataset>/date=YYYY-MM-DD/             a copy of a partition that failed, published
    <root>/data_docs/index.html                              GX Data Docs of every validation
    <root>/reference/planes/                                 reference data (whole table), published
    <root>/features/date=YYYY-MM-DD/part-*.parquet           features of one day (Spark)
    <root>/verdicts/date=YYYY-MM-DD/verdict.json             the validation SparkApplication's verdict
    <root>/reports/date=YYYY-MM-DD/report.json               the run's summary

A published folder is read through its latest manifest (:mod:`flight_delays.publication`,
:mod:`flight_delays.partitions`), never by listing its files.

The root is a local folder or an object store (``s3://bucket/prefix``). Paths under it are
``/``-joined keys (``*_key`` functions), so the same names serve :class:`DataLayout` (storage paths:
Airflow's ``ObjectStoragePath`` in the tasks, ``upath.UPath`` in the Spark jobs) and a Spark reader's
URI (:func:`under`, :func:`spark_uri`). Only names live here: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkapp import s3a

if TYPE_CHECKING:
    from datetime import date

#: A path under the data root: Airflow's ``ObjectStoragePath`` in the tasks, ``upath.UPath`` in the jobs
#: (the same pathlib-like API over fsspec).
StoragePath = Any

FLIGHTS = "flights"
WEATHER = "weather"
PLANES = "planes"
#: The datasets ingested one partition a day; planes is a reference table, ingested whole.
DAILY_DATASETS = (FLIGHTS, WEATHER)

#: The data file of a raw partition or reference table's publication (the ingest task's).
DATA_FILE = "data.parquet"
#: The Great Expectations result, in the publication of the gate's verdict beside the data it is about.
RESULT_FILE = "_validation.json"
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


def is_object_store(root: str) -> bool:
    return s3a.names_object_store([root])


def storage_uri(root: str) -> str:
    """``root`` as a URI: an object store's as given, a local folder's as an absolute ``file://`` URI."""
    if "://" in root:
        return root
    return Path(root).resolve().as_uri()


def uri(path: StoragePath) -> str:
    """A storage path's URI, without the connection id that ``str()`` of an ``ObjectStoragePath`` shows."""
    return f"{path.protocol}://{path.path}"


def spark_uri(path: StoragePath) -> str:
    """A storage path as Spark's Hadoop file systems name it: ``s3a://`` for S3."""
    return uri(path).replace("s3://", "s3a://", 1) if path.protocol == "s3" else uri(path)


@dataclass(frozen=True)
class DataLayout:
    """Where each kind of data lives under a data root (see the module's docstring).

    :param root: a storage path (``ObjectStoragePath``, ``upath.UPath``); a plain local path or string
        is taken as a local folder.
    """

    root: StoragePath

    def __post_init__(self) -> None:
        if getattr(self.root, "protocol", "") == "":  # a pathlib.Path, a str, a protocol-less UPath
            from upath import UPath

            object.__setattr__(self, "root", UPath(storage_uri(str(self.root))))

    @classmethod
    def from_env(cls) -> DataLayout:
        """The Airflow tasks' layout: ``$FLIGHT_DELAYS_DATA_ROOT`` through Airflow's object storage, an
        object store's credentials and endpoint from the connection ``settings.storage_conn_id()``."""
        from airflow.sdk import ObjectStoragePath

        from flight_delays import settings

        root = settings.data_root()
        conn_id = settings.storage_conn_id() if is_object_store(root) else None
        return cls(ObjectStoragePath(storage_uri(root), conn_id=conn_id))

    @classmethod
    def for_job(cls, root: str) -> DataLayout:
        """A Spark job's layout: credentials and endpoint from the pod's environment (``AWS_*``)."""
        from upath import UPath

        return cls(UPath(storage_uri(root)))

    def raw_partition(self, dataset: str, day: date) -> StoragePath:
        return self.root / raw_partition_key(dataset, day)

    def reference(self, dataset: str) -> StoragePath:
        return self.root / reference_key(dataset)

    @property
    def features(self) -> StoragePath:
        return self.root / FEATURES

    def feature_partition(self, day: date) -> StoragePath:
        return self.root / feature_partition_key(day)

    def quarantine_partition(self, dataset: str, day: date) -> StoragePath:
        """Where a partition that failed validation is moved, with its result."""
        return self.root / quarantine_partition_key(dataset, day)

    @property
    def data_docs(self) -> StoragePath:
        """The Great Expectations Data Docs site (``index.html`` links every validation)."""
        return self.root / DATA_DOCS

    def quarantine_reference(self, dataset: str) -> StoragePath:
        """Where a reference table that failed validation is moved, with its result."""
        return self.root / quarantine_reference_key(dataset)

    def verdict(self, day: date) -> StoragePath:
        """The validation verdict of the run of ``day``, when validation runs as a SparkApplication."""
        return self.root / verdict_key(day)

    def report(self, day: date) -> StoragePath:
        return self.root / report_key(day)
