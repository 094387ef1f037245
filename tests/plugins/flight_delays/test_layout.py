"""The data root's layout: the paths of each kind of data, as local paths and as keys under any root."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flight_delays import layout as layout_module
from flight_delays.layout import DataLayout


def test_data_layout_paths():
    layout = DataLayout(Path("/data"))
    day = date(2013, 6, 30)
    assert str(layout.raw_partition("flights", day)) == "/data/raw/flights/date=2013-06-30"
    assert str(layout.reference("planes")) == "/data/reference/planes"
    assert str(layout.feature_partition(day)) == "/data/features/date=2013-06-30"
    assert str(layout.report(day)) == "/data/reports/date=2013-06-30/report.json"


def test_keys_under_an_object_store_root_keep_the_scheme():
    day = date(2013, 6, 30)
    assert layout_module.under("s3://bucket/data/", layout_module.raw_partition_key("flights", day)) == (
        "s3://bucket/data/raw/flights/date=2013-06-30")
    assert layout_module.verdict_key(day) == "verdicts/date=2013-06-30/verdict.json"
    assert layout_module.quarantine_reference_key("planes") == "quarantine/planes/reference"
