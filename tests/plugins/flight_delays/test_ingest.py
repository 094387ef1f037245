from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date

import pandas as pd
import pytest

from flight_delays import partitions
from flight_delays.ingest import FLIGHTS, WEATHER, ingest_day, ingest_reference, is_ingested
from flight_delays.layout import DATA_FILE, RESULT_FILE, DataLayout
from flight_delays.publication import MANIFESTS, latest, publish

DAY = date(2013, 6, 30)


@pytest.fixture
def layout(tmp_path) -> DataLayout:
    return DataLayout(tmp_path / "data")


def stored_files(layout: DataLayout, dataset: str) -> list[str]:
    return sorted(p.name for p in layout.raw_partition(dataset, DAY).iterdir() if p.name != MANIFESTS)


def current_data(layout: DataLayout, dataset: str) -> bytes:
    folder = layout.raw_partition(dataset, DAY)
    return latest(folder).path(folder, DATA_FILE).read_bytes()


def test_ingest_publishes_the_real_day(layout):
    assert ingest_day(layout, DAY, writer="test") == {"flights": 918, "weather": 72}
    folder = layout.raw_partition(FLIGHTS, DAY)
    publication = latest(folder)
    assert (publication.version, publication.writer, publication.meta, list(publication.files)) == (
        1, "test", {"rows": 918}, [DATA_FILE])
    with publication.path(folder, DATA_FILE).open("rb") as data:
        flights = pd.read_parquet(data)
    assert len(flights) == 918
    assert set(zip(flights.year, flights.month, flights.day, strict=True)) == {(2013, 6, 30)}
    assert str(flights.time_hour.dtype) == "datetime64[us, UTC]"
    assert flights.loc[0, ["carrier", "flight", "origin", "dest"]].tolist() == ["B6", 1203, "JFK", "SJU"]
    assert latest(layout.raw_partition(WEATHER, DAY)).meta == {"rows": 72}
    assert is_ingested(layout, DAY)
    assert not is_ingested(layout, date(2013, 7, 1))


def test_ingesting_the_same_day_twice_publishes_identical_data(layout):
    ingest_day(layout, DAY)
    first = {d: current_data(layout, d) for d in (FLIGHTS, WEATHER)}
    ingest_day(layout, DAY)
    assert {d: current_data(layout, d) for d in (FLIGHTS, WEATHER)} == first
    assert latest(layout.raw_partition(FLIGHTS, DAY)).version == 2
    # Version 1's file stays a while (a reader may have just read its manifest): two data files.
    assert [name.split("-", 1)[1] for name in stored_files(layout, FLIGHTS)] == [DATA_FILE, DATA_FILE]


def test_failed_write_leaves_the_previous_publication_whole(layout, monkeypatch):
    ingest_day(layout, DAY)
    before, files = current_data(layout, FLIGHTS), stored_files(layout, FLIGHTS)

    def crash_midway(self, out, **kwargs):
        out.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        ingest_day(layout, DAY)
    assert latest(layout.raw_partition(FLIGHTS, DAY)).version == 1
    assert current_data(layout, FLIGHTS) == before
    assert stored_files(layout, FLIGHTS) == files  # the half-written file is removed


def test_ingest_reference_publishes_the_planes(layout):
    assert ingest_reference(layout) == 3322
    folder = layout.reference("planes")
    with latest(folder).path(folder, DATA_FILE).open("rb") as data:
        planes = pd.read_parquet(data)
    assert planes.tailnum.is_unique and len(planes) == 3322


def judge(layout: DataLayout, dataset: str, state: str) -> None:
    """Publish a verdict on the partition's current data, as the validation gate does."""
    folder = layout.raw_partition(dataset, DAY)
    current = latest(folder)
    publish(folder, {RESULT_FILE: b"{}"}, writer="gate", based_on=current, carry=(DATA_FILE,),
            meta={**current.meta,
                  partitions.VALIDATION: {"state": state, "validated_at": "now", "warnings": []}})


def test_rewriting_a_day_makes_it_unvalidated(layout):
    ingest_day(layout, DAY)
    judge(layout, FLIGHTS, partitions.PASSED)
    assert partitions.state(latest(layout.raw_partition(FLIGHTS, DAY))) == partitions.PASSED
    ingest_day(layout, DAY)
    rewritten = latest(layout.raw_partition(FLIGHTS, DAY))
    assert (rewritten.version, partitions.state(rewritten), list(rewritten.files)) == (3, None, [DATA_FILE])


def test_a_quarantined_day_counts_as_not_ingested(layout):
    ingest_day(layout, DAY)
    judge(layout, WEATHER, partitions.FAILED)
    assert not is_ingested(layout, DAY)
    ingest_day(layout, DAY)
    assert is_ingested(layout, DAY)


KILLED_INGEST = textwrap.dedent("""
    import os, signal, sys
    from datetime import date

    import pandas as pd

    from flight_delays import publication
    from flight_delays.ingest import ingest_day
    from flight_delays.layout import DataLayout

    point = sys.argv[2]
    kill = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    if point == "mid-write":
        def half_then_killed(self, out, **kwargs):
            out.write(b"PAR1 half")
            out.flush()
            kill()
        pd.DataFrame.to_parquet = half_then_killed
    elif point == "before-manifest":
        publication._create_exclusively = kill
    elif point == "between-datasets":
        real_publish = publication.publish
        def publish_then_killed(folder, *args, **kwargs):
            if "weather" in folder.path:
                kill()
            return real_publish(folder, *args, **kwargs)
        import flight_delays.ingest
        flight_delays.ingest.publish = publish_then_killed
    ingest_day(DataLayout(sys.argv[1]), date(2013, 6, 30), writer="killed")
""")


@pytest.mark.parametrize("point", ["mid-write", "before-manifest", "between-datasets"])
def test_an_ingest_killed_at_any_point_leaves_each_partition_whole(layout, tmp_path, point):
    ingest_day(layout, DAY, writer="first")
    before = {d: latest(layout.raw_partition(d, DAY)) for d in (FLIGHTS, WEATHER)}
    script = tmp_path / "killed_ingest.py"
    script.write_text(KILLED_INGEST)
    killed = subprocess.run([sys.executable, str(script), layout.root.path, point], capture_output=True,
                            text=True, timeout=300, env=os.environ)
    assert killed.returncode == -9, killed.stderr[-2000:]
    after = {d: latest(layout.raw_partition(d, DAY)) for d in (FLIGHTS, WEATHER)}
    if point == "between-datasets":  # the flights were published whole, the weather not at all
        assert (after[FLIGHTS].version, after[FLIGHTS].writer) == (2, "killed")
        assert after[WEATHER] == before[WEATHER]
        assert current_data(layout, FLIGHTS) == before[FLIGHTS].path(layout.raw_partition(FLIGHTS, DAY),
                                                                     DATA_FILE).read_bytes()
    else:
        assert after == before
    for dataset in (FLIGHTS, WEATHER):
        with latest(layout.raw_partition(dataset, DAY)).path(layout.raw_partition(dataset, DAY),
                                                             DATA_FILE).open("rb") as data:
            assert len(pd.read_parquet(data)) == {FLIGHTS: 918, WEATHER: 72}[dataset]
