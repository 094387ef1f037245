from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from flight_delays.ingest import FLIGHTS, WEATHER, ingest_day, ingest_reference, is_ingested
from flight_delays.layout import DATA_FILE, RESULT_FILE, VALIDATED_MARKER, DataLayout

DAY = date(2013, 6, 30)


@pytest.fixture
def layout(tmp_path) -> DataLayout:
    return DataLayout(tmp_path / "data")


def partition_files(layout: DataLayout, dataset: str) -> list[str]:
    return sorted(p.name for p in layout.raw_partition(dataset, DAY).iterdir())


def test_ingest_writes_the_real_day(layout):
    assert ingest_day(layout, DAY) == {"flights": 918, "weather": 72}
    flights = pd.read_parquet(layout.raw_partition(FLIGHTS, DAY) / DATA_FILE)
    assert len(flights) == 918
    assert set(zip(flights.year, flights.month, flights.day, strict=True)) == {(2013, 6, 30)}
    assert str(flights.time_hour.dtype) == "datetime64[us, UTC]"
    assert flights.loc[0, ["carrier", "flight", "origin", "dest"]].tolist() == ["B6", 1203, "JFK", "SJU"]
    assert is_ingested(layout, DAY)
    assert not is_ingested(layout, date(2013, 7, 1))


def test_ingesting_the_same_day_twice_gives_an_identical_partition(layout):
    ingest_day(layout, DAY)
    first = {d: (layout.raw_partition(d, DAY) / DATA_FILE).read_bytes() for d in (FLIGHTS, WEATHER)}
    ingest_day(layout, DAY)
    second = {d: (layout.raw_partition(d, DAY) / DATA_FILE).read_bytes() for d in (FLIGHTS, WEATHER)}
    assert first == second
    assert partition_files(layout, FLIGHTS) == [DATA_FILE]
    assert len(pd.read_parquet(layout.raw_partition(FLIGHTS, DAY))) == 918


def test_failed_write_leaves_the_previous_partition_whole(layout, monkeypatch):
    ingest_day(layout, DAY)
    before = (layout.raw_partition(FLIGHTS, DAY) / DATA_FILE).read_bytes()

    def crash_midway(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        ingest_day(layout, DAY)
    assert (layout.raw_partition(FLIGHTS, DAY) / DATA_FILE).read_bytes() == before
    assert partition_files(layout, FLIGHTS) == [DATA_FILE]


def test_ingest_reference_writes_the_planes(layout):
    assert ingest_reference(layout) == 3322
    planes = pd.read_parquet(layout.reference("planes") / DATA_FILE)
    assert planes.tailnum.is_unique and len(planes) == 3322


def test_rewriting_a_day_makes_it_unvalidated(layout):
    ingest_day(layout, DAY)
    partition = layout.raw_partition(FLIGHTS, DAY)
    (partition / VALIDATED_MARKER).write_text("{}")
    (partition / RESULT_FILE).write_text("{}")
    ingest_day(layout, DAY)
    assert partition_files(layout, FLIGHTS) == [DATA_FILE]
