"""The data root's layout: the paths of each kind of data, as local paths and as keys under any root."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flight_delays import layout as layout_module
from flight_delays.layout import DataLayout


def test_data_layout_paths():
    layout = DataLayout(Path("/data"))
    day = date(2013, 6, 30)
    assert str(layout.root) == "file:///data"
    assert layout.raw_partition("flights", day).path == "/data/raw/flights/date=2013-06-30"
    assert layout.reference("planes").path == "/data/reference/planes"
    assert layout.feature_partition(day).path == "/data/features/date=2013-06-30"
    assert layout.report(day).path == "/data/reports/date=2013-06-30/report.json"


def test_the_tasks_layout_on_an_object_store_uses_the_storage_connection(monkeypatch):
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", "s3://flight-delays/prod")
    monkeypatch.setenv("FLIGHT_DELAYS_STORAGE_CONN_ID", "lake")
    layout = DataLayout.from_env()
    partition = layout.raw_partition("flights", date(2013, 6, 30))
    assert (type(layout.root).__name__, layout.root.conn_id) == ("ObjectStoragePath", "lake")
    assert layout_module.uri(partition) == "s3://flight-delays/prod/raw/flights/date=2013-06-30"
    assert layout_module.spark_uri(partition) == "s3a://flight-delays/prod/raw/flights/date=2013-06-30"


def test_a_local_root_is_a_file_uri_and_spark_reads_it_as_is(monkeypatch, tmp_path):
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "data"))
    layout = DataLayout.from_env()
    assert (layout.root.protocol, layout.root.conn_id, layout.root.path) == ("file", None, f"{tmp_path}/data")
    assert layout_module.storage_uri("relative/data") == (Path.cwd() / "relative" / "data").as_uri()
    assert layout_module.spark_uri(layout.features) == f"file://{tmp_path}/data/features"
    job = DataLayout.for_job(str(tmp_path / "data"))
    assert (type(job.root).__name__, str(job.features)) == ("FilePath", f"file://{tmp_path}/data/features")

def test_keys_under_an_object_store_root_keep_the_scheme():
    day = date(2013, 6, 30)
    assert layout_module.under("s3://bucket/data/", layout_module.raw_partition_key("flights", day)) == (
        "s3://bucket/data/raw/flights/date=2013-06-30")
    assert layout_module.verdict_key(day) == "verdicts/date=2013-06-30/verdict.json"
    assert layout_module.quarantine_reference_key("planes") == "quarantine/planes/reference"
