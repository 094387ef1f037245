"""The validation gate on real days of 2013, clean and corrupted one way at a time."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import date, timedelta

import pandas as pd
import pytest

from flight_delays import partitions
from flight_delays.ingest import FLIGHTS, PLANES, WEATHER, ingest_day, ingest_reference, publish_frame
from flight_delays.layout import DATA_FILE, RESULT_FILE, DataLayout, uri
from flight_delays.publication import latest, publish
from flight_delays.validation import (
    DataValidationError,
    PartitionValidator,
    Verdict,
    interval_bounds,
    minimum_rows,
)

DAY = date(2013, 6, 30)
HISTORY = [DAY - timedelta(days=n) for n in range(7, 0, -1)]


@pytest.fixture(scope="module")
def validator() -> PartitionValidator:
    return PartitionValidator()


@pytest.fixture(scope="module")
def prepared_root(tmp_path_factory, validator):
    """Seven validated days of history, and the day itself ingested but not validated yet."""
    layout = DataLayout(tmp_path_factory.mktemp("validation") / "data")
    for day in [*HISTORY, DAY]:
        ingest_day(layout, day)
    ingest_reference(layout)
    validator.validate_days(layout, HISTORY)
    return layout.root


@pytest.fixture
def layout(tmp_path, prepared_root) -> DataLayout:
    """A fresh copy of the prepared data root for each test."""
    shutil.copytree(prepared_root.path, tmp_path / "data")
    return DataLayout(tmp_path / "data")


def current_file(folder, name: str = DATA_FILE):
    """The file ``name`` of ``folder``'s latest publication."""
    return latest(folder).path(folder, name)


def read_frame(folder) -> pd.DataFrame:
    with current_file(folder).open("rb") as data:
        return pd.read_parquet(data)


def result_of(folder) -> dict:
    return json.loads(current_file(folder, RESULT_FILE).read_text())


def state_of(folder) -> str | None:
    return partitions.state(latest(folder))


def corrupt(folder, change) -> None:
    publish_frame(folder, change(read_frame(folder)), writer="a bad feed")  # as the ingest task writes


def corrupt_flights(layout: DataLayout, change) -> None:
    corrupt(layout.raw_partition(FLIGHTS, DAY), change)


def history_files(layout: DataLayout) -> dict:
    return {(d, ds): current_file(layout.raw_partition(ds, d)).read_bytes()
            for d in HISTORY for ds in (FLIGHTS, WEATHER)}


def assert_quarantined(folder, quarantined) -> None:
    """``folder``'s latest publication failed; its copy in ``quarantined`` has the same data and result."""
    judged = latest(folder)
    assert partitions.state(judged) == partitions.FAILED
    copy = latest(quarantined)
    assert (sorted(copy.files), copy.meta["source"], copy.meta["version"]) == (
        [RESULT_FILE, DATA_FILE], uri(folder), judged.version)
    for name in (DATA_FILE, RESULT_FILE):
        assert copy.path(quarantined, name).read_bytes() == judged.path(folder, name).read_bytes()
    assert result_of(quarantined)["success"] is False


def test_interval_bounds_are_the_local_day_in_utc():
    assert interval_bounds(date(2013, 6, 30)) == ("2013-06-30T04:00:00+00:00", "2013-07-01T03:59:59+00:00")
    assert interval_bounds(date(2013, 1, 15)) == ("2013-01-15T05:00:00+00:00", "2013-01-16T04:59:59+00:00")


def test_volume_minimum_is_half_the_median_of_validated_history(layout):
    volumes = sorted(len(read_frame(layout.raw_partition(FLIGHTS, d))) for d in HISTORY)
    assert volumes == [812, 923, 993, 994, 994, 995, 995]  # 2013-06-23 .. 2013-06-29 (Saturday: 812)
    assert minimum_rows(layout, FLIGHTS, DAY) == 497  # median 994 / 2
    assert minimum_rows(layout, FLIGHTS, HISTORY[0]) == 1  # no validated day before it


def test_clean_day_passes_is_marked_and_keeps_its_result(layout):
    ingested = {dataset: latest(layout.raw_partition(dataset, DAY)) for dataset in (FLIGHTS, WEATHER)}
    verdict = PartitionValidator(docs_dir=layout.data_docs).validate_days(layout, [DAY])
    assert verdict.summary() == {"partitions": 2, "passed": True, "critical_failures": 0, "warnings": 0,
                                 "failures": [], "quarantined": [],
                                 "data_docs": uri(layout.data_docs / "index.html")}
    pages = sorted(p.path.removeprefix(layout.data_docs.path + "/").split("/")[:3]
                   for p in layout.data_docs.glob("validations/**/*.html"))
    assert pages == [["validations", "raw_flights", "flights-2013-06-30"],
                     ["validations", "raw_weather", "weather-2013-06-30"]]
    assert "raw_flights" in (layout.data_docs / "index.html").read_text()
    for dataset in (FLIGHTS, WEATHER):
        partition = layout.raw_partition(dataset, DAY)
        result = result_of(partition)
        assert result["success"] is True and result["statistics"]["unsuccessful_expectations"] == 0
        judged = latest(partition)
        assert (judged.version, judged.meta["rows"], judged.meta["validation"]["state"],
                judged.meta["validation"]["warnings"]) == (
            2, {FLIGHTS: 918, WEATHER: 72}[dataset], "passed", [])
        assert judged.files[DATA_FILE] == ingested[dataset].files[DATA_FILE]  # carried, not copied


def null_carrier(frame):
    frame.loc[:2, "carrier"] = None
    return frame


def set_value(column, value, rows=slice(0, 1)):
    def change(frame):
        frame.loc[frame.index[rows], column] = value
        return frame
    return change


CORRUPTIONS = {
    "null key": (null_carrier, "expect_column_values_to_not_be_null on column 'carrier', observed 3"),
    "negative distance": (lambda f: f.assign(distance=-f.distance),
                          "expect_column_values_to_be_between on column 'distance', observed 918"),
    "absurd delay": (set_value("arr_delay", 10_000.0),
                     "expect_column_values_to_be_between on column 'arr_delay', observed 1, e.g. [10000.0]"),
    "missing column": (lambda f: f.drop(columns=["tailnum"]), "expect_table_columns_to_match_set on table"),
    "renamed column": (lambda f: f.rename(columns={"dest": "destination"}),
                       "expect_table_columns_to_match_set on table"),
    "changed type": (lambda f: f.assign(distance=f.distance.astype("float64")),
                     "expect_column_values_to_be_in_type_list on column 'distance', observed 'float64'"),
    "duplicated rows": (lambda f: pd.concat([f, f.iloc[:10]], ignore_index=True),
                        "expect_compound_columns_to_be_unique on table"),
    "empty partition": (lambda f: f.iloc[:0], "expect_table_row_count_to_be_between on table, observed 0"),
    "timestamps outside the interval": (
        lambda f: f.assign(time_hour=f.time_hour + pd.Timedelta(days=2)),
        "expect_column_values_to_be_between on column 'time_hour', observed 918"),
    "unknown carrier": (set_value("carrier", "ZZ", slice(0, 4)),
                        "expect_column_values_to_be_in_set on column 'carrier', observed 4, e.g. ['ZZ'"),
    "unknown origin": (set_value("origin", "XXX"),
                       "expect_column_values_to_be_in_set on column 'origin', observed 1, e.g. ['XXX']"),
    "a tenth of the volume": (lambda f: f.iloc[: len(f) // 10],
                              "expect_table_row_count_to_be_between on table, observed 91"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_each_corruption_is_caught_named_and_quarantined(validator, layout, kind):
    change, expected = CORRUPTIONS[kind]
    history_before = history_files(layout)
    corrupt_flights(layout, change)
    with pytest.raises(DataValidationError) as raised:
        validator.validate_days(layout, [DAY])
    message = str(raised.value)
    assert re.match(r"\d+ critical expectation\(s\) failed on 2 partition\(s\):\n", message)
    assert f"[critical] flights 2013-06-30: {expected}" in message

    assert_quarantined(layout.raw_partition(FLIGHTS, DAY), layout.quarantine_partition(FLIGHTS, DAY))
    # The same day's weather is fine and validated; the earlier days are untouched.
    assert state_of(layout.raw_partition(WEATHER, DAY)) == partitions.PASSED
    assert history_files(layout) == history_before
    assert all(state_of(layout.raw_partition(FLIGHTS, d)) == partitions.PASSED for d in HISTORY)


def test_message_lists_every_failed_expectation(validator, layout):
    corrupt_flights(layout, lambda f: null_carrier(f).assign(distance=-f.distance))
    with pytest.raises(DataValidationError) as raised:
        validator.validate_days(layout, [DAY])
    first, *failures = str(raised.value).splitlines()
    assert first == "2 critical expectation(s) failed on 2 partition(s):"
    null_carrier_line, negative_distance_line = sorted(failures, key=lambda line: "null" not in line)
    assert null_carrier_line == ("[critical] flights 2013-06-30: expect_column_values_to_not_be_null "
                                 "on column 'carrier', observed 3, e.g. [None, None, None]")
    assert negative_distance_line.startswith(
        "[critical] flights 2013-06-30: expect_column_values_to_be_between on column 'distance', "
        "observed 918, e.g. [-")


def test_rerun_after_the_data_is_fixed_releases_the_day(validator, layout):
    corrupt_flights(layout, null_carrier)
    with pytest.raises(DataValidationError):
        validator.validate_days(layout, [DAY])
    assert latest(layout.quarantine_partition(FLIGHTS, DAY)) is not None
    ingest_day(layout, DAY)  # the fixed extract
    assert validator.validate_days(layout, [DAY]).passed
    assert not layout.quarantine_partition(FLIGHTS, DAY).exists()
    assert state_of(layout.raw_partition(FLIGHTS, DAY)) == partitions.PASSED


def test_warning_is_recorded_but_lets_the_run_continue(validator, layout):
    corrupt(layout.raw_partition(WEATHER, DAY), set_value("wind_speed", 1048.4))
    verdict = validator.validate_days(layout, [DAY])
    assert verdict.passed
    assert [f.describe() for f in verdict.failures] == [
        "[warning] weather 2013-06-30: expect_column_values_to_be_between on column 'wind_speed', "
        "observed 1, e.g. [1048.4]"
    ]
    judged = latest(layout.raw_partition(WEATHER, DAY))
    assert judged.meta["validation"]["state"] == partitions.PASSED
    assert judged.meta["validation"]["warnings"] == [f.describe() for f in verdict.failures]


def test_planes_reference_is_validated_and_quarantined_when_broken(validator, layout):
    verdict = validator.validate_days(layout, [], reference=True)
    assert (verdict.partitions, verdict.passed) == (1, True)
    assert state_of(layout.reference(PLANES)) == partitions.PASSED

    ingest_reference(layout)
    assert state_of(layout.reference(PLANES)) is None  # rewritten: unvalidated again
    corrupt(layout.reference(PLANES), lambda planes: pd.concat([planes, planes.iloc[:3]], ignore_index=True))
    with pytest.raises(DataValidationError) as raised:
        validator.validate_days(layout, [], reference=True)
    assert ("[critical] planes reference: expect_column_values_to_be_unique on column 'tailnum', observed 6"
            in str(raised.value))
    assert_quarantined(layout.reference(PLANES), layout.quarantine_reference(PLANES))


@pytest.fixture(scope="module")
def spark_validator(spark) -> PartitionValidator:
    return PartitionValidator(engine="spark", spark=spark)


#: pandas writes the empty frame's text columns with Arrow's null type: Spark reads them as void
#: columns, whose (null) values are not in the allowed sets. pandas reads them back as text.
SPARK_ONLY_FAILURES = {"empty partition": [
    ("flights", "expect_column_values_to_be_in_set", "carrier", "critical"),
    ("flights", "expect_column_values_to_be_in_set", "origin", "critical"),
]}


def failed_checks(failures) -> list[tuple]:
    return sorted((f.dataset, f.expectation, f.column, f.severity) for f in failures)


def observed_values(failures) -> dict:
    return {(f.expectation, f.column): f.observed for f in failures if "type" not in f.expectation}


def test_spark_engine_passes_the_clean_day(spark_validator, layout):
    verdict = spark_validator.validate_days(layout, [DAY], reference=True)
    assert (verdict.partitions, verdict.failures, verdict.quarantined) == (3, [], [])
    for dataset in (FLIGHTS, WEATHER):
        assert state_of(layout.raw_partition(dataset, DAY)) == partitions.PASSED


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_spark_engine_names_the_same_failures_as_pandas(validator, spark_validator, layout, tmp_path, kind):
    # The same suite files on both engines: the same expectations fail, on the same columns.
    change, _ = CORRUPTIONS[kind]
    corrupt_flights(layout, change)
    twin = DataLayout(tmp_path / "twin")
    shutil.copytree(layout.root.path, twin.root.path)
    on_pandas = validator.judge(layout, [DAY])
    on_spark = spark_validator.judge(twin, [DAY])
    assert on_spark.critical
    assert failed_checks(on_spark.failures) == sorted(failed_checks(on_pandas.failures)
                                                      + SPARK_ONLY_FAILURES.get(kind, []))
    # Counts and values agree too; only type names are each engine's own (see the next test).
    spark_only = {(e, c) for _, e, c, _ in SPARK_ONLY_FAILURES.get(kind, [])}
    assert ({k: v for k, v in observed_values(on_spark.failures).items() if k not in spark_only}
            == observed_values(on_pandas.failures))
    assert_quarantined(twin.raw_partition(FLIGHTS, DAY), twin.quarantine_partition(FLIGHTS, DAY))


def test_spark_names_column_types_in_its_own_words(spark_validator, layout):
    corrupt_flights(layout, lambda f: f.assign(distance=f.distance.astype("float64")))
    (failure,) = spark_validator.judge(layout, [DAY]).failures
    assert failure.describe() == ("[critical] flights 2013-06-30: expect_column_values_to_be_in_type_list "
                                  "on column 'distance', observed 'DoubleType'")


def test_the_suite_file_names_the_spark_type_beside_the_pandas_one():
    from flight_delays.validation import SUITES_DIR, load_suite

    def time_hour_type(engine: str) -> str:
        suite = load_suite(SUITES_DIR / "flights.json", engine)
        (check,) = [e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_of_type"]
        return check["kwargs"]["type_"]

    assert (time_hour_type("pandas"), time_hour_type("spark")) == ("Timestamp", "TimestampType")


def test_verdict_round_trips_through_json(validator, layout):
    corrupt_flights(layout, null_carrier)
    verdict = validator.judge(layout, [DAY])
    summary = json.loads(json.dumps(verdict.summary()))
    assert Verdict.from_summary(summary) == verdict
    with pytest.raises(DataValidationError, match="expect_column_values_to_not_be_null on column 'carrier'"):
        Verdict.from_summary(summary).raise_for_critical()


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match=r"engine must be one of \('pandas', 'spark'\), got 'dask'"):
        PartitionValidator(engine="dask")
    with pytest.raises(ValueError, match="a SparkSession is needed with engine='spark'"):
        PartitionValidator(engine="spark")


@pytest.mark.parametrize(("engine", "reader_error"), [
    ("pandas", "ArrowInvalid: Could not open Parquet input source"),
    ("spark", "org.apache.spark.SparkException: [FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER]"),
])
def test_a_truncated_file_is_a_critical_failure_not_a_crash(validator, spark_validator, layout, engine,
                                                            reader_error):
    folder = layout.raw_partition(FLIGHTS, DAY)
    publish(folder, {DATA_FILE: current_file(folder).read_bytes()[:5000]}, writer="a cut-off transfer")
    with pytest.raises(DataValidationError) as raised:
        {"pandas": validator, "spark": spark_validator}[engine].validate_days(layout, [DAY])
    (line,) = str(raised.value).splitlines()[1:]
    assert re.match(r"\[critical\] flights 2013-06-30: partition_is_readable_parquet on table, "
                    f"observed ['\"]{re.escape(reader_error)}", line)
    quarantined = layout.quarantine_partition(FLIGHTS, DAY)
    assert_quarantined(folder, quarantined)
    assert len(current_file(quarantined).read_bytes()) == 5000
    assert state_of(layout.raw_partition(WEATHER, DAY)) == partitions.PASSED


def test_a_missing_partition_is_an_error_of_the_pipeline_not_a_verdict(validator, layout):
    shutil.rmtree(layout.raw_partition(FLIGHTS, DAY).path)
    with pytest.raises(FileNotFoundError, match=r"flights/date=2013-06-30 was never published: "
                                                r"was flights ingested\?"):
        validator.validate_days(layout, [DAY])
    assert not layout.quarantine_partition(FLIGHTS, DAY).exists()


KILLED_GATE = textwrap.dedent("""
    import os, signal, sys
    from datetime import date

    from flight_delays import publication
    from flight_delays.layout import DataLayout
    from flight_delays.validation import PartitionValidator

    # Killed when the first verdict's manifest is about to be created: results computed, files written.
    publication._create_exclusively = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
    PartitionValidator().judge(DataLayout(sys.argv[1]), [date(2013, 6, 30)])
""")


def test_a_gate_killed_before_its_verdict_leaves_the_day_unvalidated_and_a_rerun_validates_it(
        validator, layout, tmp_path):
    before = {dataset: latest(layout.raw_partition(dataset, DAY)) for dataset in (FLIGHTS, WEATHER)}
    script = tmp_path / "killed_gate.py"
    script.write_text(KILLED_GATE)
    killed = subprocess.run([sys.executable, str(script), layout.root.path], capture_output=True, text=True,
                            timeout=300, env=os.environ)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert {dataset: latest(layout.raw_partition(dataset, DAY)) for dataset in (FLIGHTS, WEATHER)} == before
    assert all(partitions.state(p) is None for p in before.values())  # not validated, not failed
    assert validator.validate_days(layout, [DAY]).passed
    assert [latest(layout.raw_partition(d, DAY)).version for d in (FLIGHTS, WEATHER)] == [2, 2]
