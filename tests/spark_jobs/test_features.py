from __future__ import annotations

import math
import re
import textwrap
from datetime import date, datetime, timezone

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from flight_delays import partitions
from flight_delays.layout import DATA_FILE, RESULT_FILE, DataLayout, spark_uri
from flight_delays.publication import PublicationConflict, latest, publish
from spark_jobs.features import (
    FEATURE_COLUMNS,
    PLANES_SCHEMA,
    RAW_FLIGHTS_SCHEMA,
    RAW_WEATHER_SCHEMA,
    build_features,
    daily_delay_counts,
    parse_args,
    schedule_features,
    trailing_delay_rate,
    with_flight_date,
)

LEAKY_COLUMNS = {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"}


def flight(day: int, *, carrier="AA", flight_no=1, arr_delay=0.0, origin="JFK", dest="LAX",
           sched_dep_time=1545, sched_arr_time=1905, tailnum="N1", hour=15, dep_delay=0.0):
    return {
        "year": 2013, "month": 6, "day": day, "dep_time": 1545.0, "sched_dep_time": sched_dep_time,
        "dep_delay": dep_delay, "arr_time": 1910.0, "sched_arr_time": sched_arr_time, "arr_delay": arr_delay,
        "carrier": carrier, "flight": flight_no, "tailnum": tailnum, "origin": origin, "dest": dest,
        "air_time": 330.0, "distance": 2475, "hour": hour, "minute": 45,
        "time_hour": datetime(2013, 6, day, hour + 4, tzinfo=timezone.utc),
    }


def raw_flights(spark, rows):
    return spark.createDataFrame([Row(**r) for r in rows], RAW_FLIGHTS_SCHEMA)


def test_daily_delay_counts_skip_flights_that_did_not_arrive(spark):
    flights = with_flight_date(raw_flights(spark, [
        flight(1, arr_delay=20.0), flight(1, arr_delay=15.0), flight(1, arr_delay=14.0),
        flight(1, arr_delay=None), flight(1, carrier="UA", arr_delay=60.0),
    ]))
    assertDataFrameEqual(daily_delay_counts(flights, ("carrier",)), [
        Row(date=date(2013, 6, 1), carrier="AA", flights=3, delayed=2),
        Row(date=date(2013, 6, 1), carrier="UA", flights=1, delayed=1),
    ])


def test_trailing_delay_rate_uses_only_earlier_days_of_the_history(spark):
    daily = spark.createDataFrame([
        Row(date=date(2013, 6, 1), carrier="AA", flights=10, delayed=2),
        Row(date=date(2013, 6, 2), carrier="AA", flights=10, delayed=8),
        Row(date=date(2013, 6, 3), carrier="AA", flights=5, delayed=5),
        Row(date=date(2013, 6, 2), carrier="UA", flights=4, delayed=1),
    ])
    targets = spark.createDataFrame([
        Row(date=date(2013, 6, 1), carrier="AA", flight=1),
        Row(date=date(2013, 6, 3), carrier="AA", flight=2),
        Row(date=date(2013, 6, 3), carrier="UA", flight=3),
        Row(date=date(2013, 6, 3), carrier="DL", flight=4),
    ])
    two_days = trailing_delay_rate(targets, daily, ("carrier",), 2, "rate")
    assertDataFrameEqual(two_days, [
        Row(date=date(2013, 6, 1), carrier="AA", flight=1, rate=None),
        Row(date=date(2013, 6, 3), carrier="AA", flight=2, rate=0.5),   # (2 + 8) / (10 + 10)
        Row(date=date(2013, 6, 3), carrier="UA", flight=3, rate=0.25),
        Row(date=date(2013, 6, 3), carrier="DL", flight=4, rate=None),
    ])
    one_day = trailing_delay_rate(targets, daily, ("carrier",), 1, "rate")
    assert {r.flight: r.rate for r in one_day.collect()} == {1: None, 2: 0.8, 3: 0.25, 4: None}


def test_schedule_features(spark):
    flights = with_flight_date(raw_flights(spark, [
        flight(30, carrier="UA", origin="JFK", sched_dep_time=1545, sched_arr_time=5),
        flight(29, carrier="ZZ", origin="LGA", sched_dep_time=600, sched_arr_time=2359),
    ]))
    rows = schedule_features(flights).select(
        "day_of_week", "sched_dep_hour", "sched_dep_minute", "sched_arr_hour", "carrier_code", "origin_code"
    ).collect()
    assert [tuple(r) for r in rows] == [(1, 15, 45, 0, 11, 1), (7, 6, 0, 23, -1, 2)]


def test_build_features_has_no_leakage_and_exact_values(spark):
    rows = [
        flight(1, arr_delay=30.0, flight_no=10), flight(1, arr_delay=0.0, flight_no=11),
        flight(2, arr_delay=40.0, flight_no=12, dep_delay=35.0),
        flight(2, arr_delay=None, flight_no=13),  # cancelled: no label, not a training row
        flight(2, arr_delay=-5.0, flight_no=14, tailnum="N-UNKNOWN", hour=9),
    ]
    weather = spark.createDataFrame([Row(
        origin="JFK", year=2013, month=6, day=2, hour=15, temp=80.0, dewp=60.0, humid=50.0, wind_dir=90.0,
        wind_speed=10.0, wind_gust=None, precip=0.0, pressure=1010.0, visib=10.0,
        time_hour=datetime(2013, 6, 2, 19, tzinfo=timezone.utc),
    )], RAW_WEATHER_SCHEMA)
    planes = spark.createDataFrame([Row(tailnum="N1", year=2004.0, engines=2, seats=150)], PLANES_SCHEMA)

    features = build_features(raw_flights(spark, rows), weather, planes,
                              start=date(2013, 6, 2), end=date(2013, 6, 2), history_days=14)
    assert not LEAKY_COLUMNS & set(features.columns)
    assert features.columns == ["carrier", "flight", "origin", "dest", "sched_dep_time", *FEATURE_COLUMNS,
                                "is_delayed", "date"]
    by_flight = {r.flight: r.asDict() for r in features.collect()}
    assert sorted(by_flight) == [12, 14]
    f12 = by_flight[12]
    assert (f12["is_delayed"], f12["temp"], f12["plane_age"], f12["seats"], f12["carrier_delay_rate"],
            f12["route_delay_rate"], f12["origin_hour_delay_rate"]) == (1, 80.0, 9.0, 150.0, 0.5, 0.5, 0.5)
    assert f12["wind_gust"] is None
    f14 = by_flight[14]
    assert (f14["is_delayed"], f14["temp"], f14["plane_age"], f14["origin_hour_delay_rate"]) == (
        0, None, None, None)

    # Outcomes of the same day must not move any feature: only earlier days count.
    same_day_changed = [dict(r, arr_delay=500.0) if r["day"] == 2 and r["flight"] == 14 else r for r in rows]
    changed = build_features(raw_flights(spark, same_day_changed), weather, planes,
                             start=date(2013, 6, 2), end=date(2013, 6, 2), history_days=14)
    f12_changed = next(r.asDict() for r in changed.collect() if r.flight == 12)
    assert {k: v for k, v in f12_changed.items() if not (isinstance(v, float) and math.isnan(v))} == {
        k: v for k, v in f12.items() if not (isinstance(v, float) and math.isnan(v))}


def test_parse_args_refuses_dates_out_of_order():
    with pytest.raises(SystemExit):
        parse_args(["--data-root", "/d", "--start-date", "2013-06-10", "--end-date", "2013-06-01",
                    "--history-start", "2013-05-01"])
    args = parse_args(["--data-root", "/d", "--start-date", "2013-06-01", "--end-date", "2013-06-10",
                       "--history-start", "2013-05-18", "--history-days", "14"])
    assert (args.start_date, args.end_date, args.history_start, args.history_days) == (
        date(2013, 6, 1), date(2013, 6, 10), date(2013, 5, 18), 14)


def test_only_validated_partitions_are_read(tmp_path):
    from spark_jobs.features import validated_paths

    data = DataLayout.for_job(str(tmp_path))
    folders = {day: data.raw_partition("flights", date(2013, 6, day)) for day in (1, 2, 3, 4)}
    for day, verdict in ((1, partitions.PASSED), (2, None), (3, partitions.FAILED)):
        ingested = publish(folders[day], {DATA_FILE: b"PAR1"}, writer="ingest", meta={"rows": 1})
        if verdict:
            publish(folders[day], {RESULT_FILE: b"{}"}, writer="gate", based_on=ingested, carry=(DATA_FILE,),
                    meta={"rows": 1, partitions.VALIDATION: {"state": verdict}})
    validated = latest(folders[1])
    assert validated_paths([folders[1]]) == [f"file://{tmp_path}/raw/flights/date=2013-06-01/"
                                             f"{validated.files[DATA_FILE]}"]
    with pytest.raises(partitions.PartitionUnavailable) as raised:
        validated_paths(list(folders.values()))
    assert str(raised.value).splitlines() == [
        "3 raw partition(s) cannot be read, only validated ones are:",
        f"{folders[2]}: version 1 by ingest, not validated yet",
        f"{folders[3]}: version 2 by gate, failed validation (a copy is in quarantine/)",
        f"{folders[4]}: never ingested"]


def test_features_are_published_per_day_and_a_rerun_publishes_the_next_version(spark, tmp_path):
    from spark_jobs.features import publish_features

    data = DataLayout.for_job(str(tmp_path))
    days = [date(2013, 6, 1), date(2013, 6, 2)]
    frame = spark.createDataFrame([Row(date=days[i % 2], x=i) for i in range(5)])
    assert publish_features(frame, data, days, writer="run-1") == {days[0]: 3, days[1]: 2}
    first = {day: latest(data.feature_partition(day)) for day in days}
    assert [(p.version, p.writer, p.meta) for p in first.values()] == [
        (1, "run-1", {"rows": 3}), (1, "run-1", {"rows": 2})]
    (stored,) = first[days[0]].files.values()  # one file a day, in the run's own folder
    assert re.fullmatch(r"[0-9a-f]{12}/part-00000-.*\.parquet", stored)
    parts = partitions.feature_files(data.feature_partition(days[0]))
    read = spark.read.parquet(*[spark_uri(part) for part in parts])
    assert sorted(r.x for r in read.collect()) == [0, 2, 4]

    publish_features(frame.where("x < 4"), data, days, writer="run-2")
    second = latest(data.feature_partition(days[0]))
    assert (second.version, second.meta, second.files == first[days[0]].files) == (2, {"rows": 2}, False)
    # The first run's folder stays while a reader of version 1 may still read it (publication's grace).
    folders = sorted(p.name for p in data.feature_partition(days[0]).iterdir() if p.name != "_manifests")
    assert folders == sorted({stored.split("/")[0], second.files["part-00000.parquet"].split("/")[0]})


def test_of_two_runs_publishing_the_same_day_the_later_fails_naming_the_winner(spark, tmp_path, monkeypatch):
    from spark_jobs import features as job

    data = DataLayout.for_job(str(tmp_path))
    day = date(2013, 6, 1)
    real_publish = job.publish

    def a_concurrent_run_publishes_first(folder, *args, **kwargs):
        real_publish(folder, {"part-00000.parquet": b"PAR1"}, writer="the other run", meta={"rows": 1})
        return real_publish(folder, *args, **kwargs)

    monkeypatch.setattr(job, "publish", a_concurrent_run_publishes_first)
    frame = spark.createDataFrame([Row(date=day, x=1)])
    with pytest.raises(PublicationConflict, match=r"date=2013-06-01: version 1 was published by the other "
                                                  r"run at .* while this run was writing it"):
        job.publish_features(frame, data, [day], writer="this run")
    winner = latest(data.feature_partition(day))
    assert (winner.version, winner.writer) == (1, "the other run")
    assert sorted(p.name for p in data.feature_partition(day).iterdir()) == sorted(
        ["_manifests", winner.files["part-00000.parquet"]])  # nothing of the loser's is left


KILLED_FEATURE_RUN = textwrap.dedent("""
    import os, signal, sys
    from datetime import date

    from pyspark.sql import Row, SparkSession

    from flight_delays.layout import DataLayout
    from spark_jobs import features as job

    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    # Killed when its first day's part files are written and its manifest is next.
    job.publish = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    day = date(2013, 6, 1)
    job.publish_features(spark.createDataFrame([Row(date=day, x=9)]), DataLayout.for_job(sys.argv[1]), [day],
                         writer="killed")
""")


def test_a_feature_run_killed_mid_write_leaves_the_previous_publication_intact(spark, tmp_path):
    import subprocess
    import sys

    from spark_jobs.features import publish_features

    data = DataLayout.for_job(str(tmp_path / "data"))
    day = date(2013, 6, 1)
    publish_features(spark.createDataFrame([Row(date=day, x=1), Row(date=day, x=2)]), data, [day],
                     writer="run-1")
    before = latest(data.feature_partition(day))
    script = tmp_path / "killed_feature_run.py"
    script.write_text(KILLED_FEATURE_RUN)
    killed = subprocess.run([sys.executable, str(script), str(tmp_path / "data")], capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert latest(data.feature_partition(day)) == before
    parts = partitions.feature_files(data.feature_partition(day))
    assert sorted(r.x for r in spark.read.parquet(*[spark_uri(p) for p in parts]).collect()) == [1, 2]
    # The killed run's part files are there, in a folder of its own that no manifest names.
    folders = {p.name for p in data.feature_partition(day).iterdir()} - {"_manifests"}
    assert len(folders) == 2 and before.files["part-00000.parquet"].split("/")[0] in folders
