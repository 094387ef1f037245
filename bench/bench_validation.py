"""Benchmark: validating one day's flights with Great Expectations, pandas engine vs Spark engine,
at 1x and 100x the real daily volume.

    .venv/bin/python bench/bench_validation.py [--day 2013-06-30] [--repeats 3]

The 100x day resamples the real day 100 times, shifting flight numbers so that the natural key stays
unique (every expectation still has its real meaning). The suite is include/expectations/flights.json,
run through the project's PartitionValidator on each engine (pandas in-process; Spark in a warm
local[2] SparkSession), GX's import and the JVM start timed separately, not per day; then the whole
validation of a day as the DAG's validate SparkApplication (local spark-submit), end to end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]
from devtools.environment import embedded_default  # noqa: E402  (after sys.path)

for _name, _value in embedded_default(python=sys.executable).items():  # unless the caller set them
    if _name in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "AIRFLOW_CONN_SPARK_DEFAULT"):
        os.environ.setdefault(_name, _value)


def scaled(frame, factor: int):
    import pandas as pd

    copies = [frame.assign(flight=frame.flight + 10_000 * k) for k in range(factor)]
    return pd.concat(copies, ignore_index=True)


def as_spark_application(day: date, flights) -> tuple[float, dict]:
    """Validate a data root holding ``day`` (with these flights) through the DAG's own validation
    SparkApplication on the local backend; return the wall time and the verdict it filed."""
    import tempfile

    from flight_delays.ingest import (
        FLIGHTS,
        WEATHER,
        ingest_reference,
        publish_frame,
        source_rows,
    )
    from flight_delays.jobs import VALIDATE_JOB
    from flight_delays.layout import DataLayout
    from sparkapp.application import render_manifest
    from sparkapp.hooks.local import LocalSparkApplicationClient

    with tempfile.TemporaryDirectory() as folder:
        layout = DataLayout(Path(folder) / "data")
        publish_frame(layout.raw_partition(FLIGHTS, day), flights)
        publish_frame(layout.raw_partition(WEATHER, day), source_rows(WEATHER, day))
        ingest_reference(layout)
        manifest = render_manifest(VALIDATE_JOB, name=f"validate-bench-{len(flights)}", namespace="bench",
                                   arguments=["--data-root", str(layout.root), "--day", day.isoformat(),
                                              "--days", day.isoformat(), "--reference"])
        client = LocalSparkApplicationClient(state_dir=Path(folder) / "applications")
        start = time.perf_counter()
        application = client.create_application(manifest)
        seconds = time.perf_counter() - start
        if application["status"]["applicationState"]["state"] != "COMPLETED":
            raise RuntimeError(f"the validation application failed: {application['status']}")
        return seconds, json.loads(layout.verdict(day).read_text())


def timed(function, repeats: int) -> tuple[float, object]:
    result, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 6, 30))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)

    from flight_delays.ingest import source_rows

    start = time.perf_counter()
    import great_expectations  # noqa: F401  (timed: the one-time cost of GX)
    gx_import = time.perf_counter() - start

    from flight_delays.validation import PartitionValidator

    day_frame = source_rows("flights", args.day)
    frames = {1: day_frame, 100: scaled(day_frame, 100)}

    validator = PartitionValidator()
    validator.validate_frame("flights", args.day, day_frame)  # warm: suites registered, metrics compiled
    pandas_rows = {}
    for factor, frame in frames.items():
        seconds, (_, failures) = timed(lambda f=frame: validator.validate_frame("flights", args.day, f),
                                       args.repeats)
        pandas_rows[factor] = (seconds, [x.expectation for x in failures if x.severity == "critical"])

    start = time.perf_counter()
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").config("spark.log.level", "ERROR")
             .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false").getOrCreate())
    jvm_start = time.perf_counter() - start
    spark_validator = PartitionValidator(engine="spark", spark=spark)
    spark_rows = {}
    for factor, frame in frames.items():
        spark_frame = spark.createDataFrame(frame).cache()
        spark_frame.count()
        run = lambda f=spark_frame: spark_validator.validate_frame("flights", args.day, f)  # noqa: E731
        run()  # warm
        seconds, (_, failures) = timed(run, args.repeats)
        spark_rows[factor] = (seconds, [x.expectation for x in failures if x.severity == "critical"])
    spark.stop()
    applications = {factor: as_spark_application(args.day, frame) for factor, frame in frames.items()}

    print(f"Validating one day of flights ({args.day}), median of {args.repeats}, 2 CPUs")
    print(f"command: .venv/bin/python bench/bench_validation.py --day {args.day} --repeats {args.repeats}")
    print(f"one-time costs: import great_expectations {gx_import:.2f} s; "
          f"Spark session start {jvm_start:.2f} s")
    print(f"{'volume':>8} {'rows':>8} {'pandas (s)':>11} {'spark (s)':>10}  spark / pandas")
    for factor, frame in frames.items():
        p, s = pandas_rows[factor][0], spark_rows[factor][0]
        print(f"{str(factor) + 'x':>8} {len(frame):>8} {p:>11.3f} {s:>10.3f}  {s / p:>6.1f}")
    print("critical failures (pandas):", {f: r[1] for f, r in pandas_rows.items()})
    print("critical failures (spark): ", {f: r[1] for f, r in spark_rows.items()})
    print("as the DAG's validate SparkApplication (local spark-submit, JVM start included; the day's "
          "flights and weather and the planes table):")
    for factor, (seconds, verdict) in applications.items():
        print(f"{str(factor) + 'x':>8} {seconds:>7.1f} s  {verdict['partitions']} partitions, "
              f"critical: {[f['expectation'] for f in verdict['failures'] if f['severity'] == 'critical']}")
    target = pandas_rows[1][0] < 1.0
    print(f"target: a real day in-process under 1 s beyond GX's import: {'met' if target else 'NOT met'}")
    return 0 if target else 2


if __name__ == "__main__":
    sys.exit(main())
