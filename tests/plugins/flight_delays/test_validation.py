from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from flight_delays.ingest import FLIGHTS, WEATHER, ingest_day
from flight_delays.settings import DataLayout
from flight_delays.validation import RESULT_FILE, DataValidationError, PartitionValidator

DAY = date(2013, 6, 30)


@pytest.fixture(scope="module")
def validator() -> PartitionValidator:
    return PartitionValidator()


@pytest.fixture
def layout(tmp_path) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    ingest_day(layout, DAY)
    return layout


def corrupt_flights(layout: DataLayout, change) -> None:
    path = layout.raw_partition(FLIGHTS, DAY) / "data.parquet"
    frame = pd.read_parquet(path)
    change(frame).to_parquet(path, index=False)


def test_clean_day_passes_and_keeps_its_result(validator, layout):
    verdict = validator.validate_days(layout, [DAY])
    assert verdict.summary() == {"partitions": 2, "passed": True, "critical_failures": 0, "warnings": 0,
                                 "failures": []}
    for dataset in (FLIGHTS, WEATHER):
        result = json.loads((layout.raw_partition(dataset, DAY) / RESULT_FILE).read_text())
        assert result["success"] is True
        assert result["statistics"]["unsuccessful_expectations"] == 0


def null_carrier(frame):
    frame.loc[:2, "carrier"] = None
    return frame


def unknown_origin(frame):
    frame.loc[5, "origin"] = "XXX"
    return frame


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (null_carrier,
         "[critical] flights 2013-06-30: expect_column_values_to_not_be_null on column 'carrier', "
         "observed 3, e.g. [None, None, None]"),
        (unknown_origin,
         "[critical] flights 2013-06-30: expect_column_values_to_be_in_set on column 'origin', "
         "observed 1, e.g. ['XXX']"),
        (lambda f: f.assign(distance=f.distance * 0 - 5),
         "[critical] flights 2013-06-30: expect_column_values_to_be_between on column 'distance', "
         "observed 918, e.g. [-5, -5, -5, -5, -5]"),
        (lambda f: f.drop(columns=["tailnum"]),
         "[critical] flights 2013-06-30: expect_table_columns_to_match_set on table"),
        (lambda f: f.iloc[:0],
         "[critical] flights 2013-06-30: expect_table_row_count_to_be_between on table, observed 0"),
    ],
)
def test_critical_failure_fails_naming_expectation_and_column(validator, layout, change, expected):
    corrupt_flights(layout, change)
    with pytest.raises(DataValidationError) as raised:
        validator.validate_days(layout, [DAY])
    message = str(raised.value)
    assert message.startswith("1 critical expectation(s) failed on 2 partition(s):\n")
    assert expected in message
    result = json.loads((layout.raw_partition(FLIGHTS, DAY) / RESULT_FILE).read_text())
    assert result["success"] is False


def test_warning_is_recorded_but_lets_the_run_continue(validator, layout):
    corrupt_flights(layout, lambda f: f.assign(arr_delay=f.arr_delay.where(f.index != 0, 2000.0)))
    verdict = validator.validate_days(layout, [DAY])
    assert verdict.passed
    assert [f.describe() for f in verdict.failures] == [
        "[warning] flights 2013-06-30: expect_column_values_to_be_between on column 'arr_delay', "
        "observed 1, e.g. [2000.0]"
    ]
