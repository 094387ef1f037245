"""The data root's published partitions: raw partitions and the reference table, each folder a
publication (:mod:`flight_delays.publication`) whose manifest says what the gate made of its data;
and feature partitions, published by the feature job.

Ingesting a day publishes a version naming its ``layout.DATA_FILE``, with ``rows`` in the manifest's
``meta`` and no verdict: a rewritten partition is unvalidated in the same write that replaces the data.
The validation gate then publishes the next version, based on the one it validated, naming the same
data file (carried, not copied), its Great Expectations result (``layout.RESULT_FILE``) and its verdict
under ``meta["validation"]``: ``state`` :data:`PASSED` or :data:`FAILED`, when, and the warnings. A
re-ingest between the read and the verdict makes the verdict's publication fail as a conflict, so a
verdict never lands on data it did not see. The feature and training jobs read only partitions whose
latest publication :data:`PASSED`.

A feature partition ``features/date=D/`` is published by the feature job as one version naming the
part files Spark wrote into a folder of the job's own below it (``<token>/part-*.parquet``), with
``rows`` in ``meta``; readers take the latest version's files (:func:`feature_files`).

Paths are :class:`airflow.sdk.ObjectStoragePath` in Airflow and :class:`upath.UPath` in the Spark jobs
(``layout.DataLayout``); this module needs neither Airflow nor Spark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flight_delays.layout import DATA_FILE
from flight_delays.publication import Publication, latest, publish

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: The manifest's ``meta`` key of the gate's verdict.
VALIDATION = "validation"
PASSED = "passed"
FAILED = "failed"


class PartitionUnavailable(FileNotFoundError):
    """A reader asked for data that is not there to read (not ingested, not validated, failed, or not
    published); the message says what there is."""


def validation(publication: Publication | None) -> dict | None:
    """The gate's verdict on ``publication`` (``state``, ``validated_at``, ``warnings``), or None."""
    return publication.meta.get(VALIDATION) if publication else None


def state(publication: Publication | None) -> str | None:
    """``passed``, ``failed``, or None: not published, or published and not validated yet."""
    verdict = validation(publication)
    return verdict["state"] if verdict else None


def describe(folder: ObjectStoragePath, publication: Publication | None) -> str:
    """What ``folder`` holds, for an error message."""
    if publication is None:
        return f"{folder}: never ingested"
    verdict = state(publication)
    what = {None: "not validated yet", PASSED: "validated",
            FAILED: "failed validation (a copy is in quarantine/)"}[verdict]
    return f"{folder}: version {publication.version} by {publication.writer}, {what}"


def validated_data(folder: ObjectStoragePath) -> ObjectStoragePath:
    """The data file of ``folder``'s latest publication, which passed the gate.

    :raises PartitionUnavailable: never ingested, not validated since its last ingest, or failed.
    """
    publication = latest(folder)
    if state(publication) != PASSED:
        raise PartitionUnavailable(describe(folder, publication))
    return publication.path(folder, DATA_FILE)


def feature_files(folder: ObjectStoragePath) -> list[ObjectStoragePath]:
    """The part files of the feature partition ``folder``'s latest publication.

    :raises PartitionUnavailable: the feature job never published the day.
    """
    publication = latest(folder)
    if publication is None:
        raise PartitionUnavailable(f"{folder}: no features published (the feature job did not run for it)")
    return [publication.path(folder, name) for name in sorted(publication.files)]


def publish_feature_frame(folder: ObjectStoragePath, frame, *, writer: str) -> Publication:
    """Publish the pandas ``frame`` as the feature partition ``folder``, as the feature job publishes one
    (for a test or a benchmark that prepares features without running the job)."""
    from flight_delays.ingest import parquet_content

    return publish(folder, {"part-00000.parquet": parquet_content(frame)}, writer=writer,
                   meta={"rows": len(frame)})
