"""Feature job: one row per flight, with only what is known before departure, for a window of days.

Reads the raw flights of the window plus ``--history-days`` before it (for rolling delay rates),
the window's weather and the planes reference table; writes ``<data-root>/features/date=YYYY-MM-DD``
for every day of the window with dynamic partition overwrite (other days are left alone).

Never used as features, because they are only known after departure: ``dep_time``, ``dep_delay``,
``arr_time``, ``arr_delay`` (except through the label and the history of *earlier* days) and
``air_time``.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from flight_delays import layout
from flight_delays.contract import (
    CARRIERS,
    DELAY_THRESHOLD_MINUTES,
    FEATURE_COLUMNS,
    HISTORY_RATES,
    KEY_COLUMNS,
    LABEL_COLUMN,
    ORIGINS,
    WEATHER_COLUMNS,
)
from flight_delays.layout import FLIGHTS, PLANES, VALIDATED_MARKER, WEATHER, under
from flight_delays.window import day_range

RAW_FLIGHTS_SCHEMA = StructType([
    StructField("year", LongType()), StructField("month", LongType()), StructField("day", LongType()),
    StructField("dep_time", DoubleType()), StructField("sched_dep_time", LongType()),
    StructField("dep_delay", DoubleType()), StructField("arr_time", DoubleType()),
    StructField("sched_arr_time", LongType()), StructField("arr_delay", DoubleType()),
    StructField("carrier", StringType()), StructField("flight", LongType()),
    StructField("tailnum", StringType()), StructField("origin", StringType()),
    StructField("dest", StringType()), StructField("air_time", DoubleType()),
    StructField("distance", LongType()), StructField("hour", LongType()),
    StructField("minute", LongType()), StructField("time_hour", TimestampType()),
])
RAW_WEATHER_SCHEMA = StructType([
    StructField("origin", StringType()), StructField("year", LongType()), StructField("month", LongType()),
    StructField("day", LongType()), StructField("hour", LongType()),
    *(StructField(c, DoubleType()) for c in ("temp", "dewp", "humid", "wind_dir", "wind_speed",
                                             "wind_gust", "precip", "pressure", "visib")),
    StructField("time_hour", TimestampType()),
])
PLANES_SCHEMA = StructType([
    StructField("tailnum", StringType()), StructField("year", DoubleType()),
    StructField("engines", LongType()), StructField("seats", LongType()),
])
FEATURES_SCHEMA = StructType([
    StructField("carrier", StringType()), StructField("flight", LongType()),
    StructField("origin", StringType()), StructField("dest", StringType()),
    StructField("sched_dep_time", LongType()),
    *(StructField(c, DoubleType()) for c in FEATURE_COLUMNS),
    StructField(LABEL_COLUMN, IntegerType()),
    StructField("date", DateType()),
])


def with_flight_date(flights: DataFrame) -> DataFrame:
    """Add ``date``: the flight's local (New York) calendar day."""
    return flights.withColumn("date", F.make_date("year", "month", "day"))


def daily_delay_counts(flights: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Per day and ``keys``: flights that arrived (``flights``) and those ≥ 15 min late (``delayed``)."""
    arrived = flights.where(F.col("arr_delay").isNotNull())
    return arrived.groupBy("date", *keys).agg(
        F.count(F.lit(1)).alias("flights"),
        F.sum((F.col("arr_delay") >= DELAY_THRESHOLD_MINUTES).cast("long")).alias("delayed"),
    )


def trailing_delay_rate(targets: DataFrame, daily: DataFrame, keys: tuple[str, ...], history_days: int,
                        name: str) -> DataFrame:
    """Add ``name``: the share of delayed flights with the same ``keys`` over the ``history_days``
    days *before* each target's date (never the same day: its outcomes are not known yet).

    Null where there is no history.
    """
    wanted = targets.select("date", *keys).distinct().alias("t")
    d = daily.alias("d")
    condition = [F.col(f"t.{k}") == F.col(f"d.{k}") for k in keys] + [
        F.col("d.date") < F.col("t.date"),
        F.col("d.date") >= F.date_sub(F.col("t.date"), history_days),
    ]
    rates = wanted.join(d, condition).groupBy(*(F.col(f"t.{c}").alias(c) for c in ("date", *keys))).agg(
        (F.sum("d.delayed") / F.sum("d.flights")).alias(name)
    )
    return targets.join(rates, ["date", *keys], "left")


def schedule_features(flights: DataFrame) -> DataFrame:
    """Add calendar, schedule, route and carrier features."""
    carriers = F.array(*(F.lit(c) for c in CARRIERS))
    origins = F.array(*(F.lit(o) for o in ORIGINS))
    return (
        flights.withColumn("day_of_week", F.dayofweek("date"))
        .withColumn("sched_dep_hour", F.floor(F.col("sched_dep_time") / 100))
        .withColumn("sched_dep_minute", F.col("sched_dep_time") % 100)
        .withColumn("sched_arr_hour", F.floor(F.col("sched_arr_time") / 100))
        # Codes are positions in fixed lists, so they mean the same in every partition; -1 is unknown.
        .withColumn("carrier_code", F.array_position(carriers, F.col("carrier")) - 1)
        .withColumn("origin_code", F.array_position(origins, F.col("origin")) - 1)
    )


def weather_features(flights: DataFrame, weather: DataFrame) -> DataFrame:
    """Add the weather at the origin in the scheduled departure hour (null where none was recorded)."""
    hourly = weather.select("origin", "time_hour", *WEATHER_COLUMNS).dropDuplicates(["origin", "time_hour"])
    return flights.join(hourly, ["origin", "time_hour"], "left")


def plane_features(flights: DataFrame, planes: DataFrame) -> DataFrame:
    """Add the plane's age in years, seats and engines (null for unknown tail numbers)."""
    fleet = planes.select("tailnum", F.col("year").alias("plane_year"), "seats", "engines")
    return (
        flights.join(fleet, "tailnum", "left")
        .withColumn("plane_age", F.col("year") - F.col("plane_year"))
        .drop("plane_year")
    )


def build_features(flights: DataFrame, weather: DataFrame, planes: DataFrame, *, start: date, end: date,
                   history_days: int) -> DataFrame:
    """Features and label of the flights of ``start``..``end`` that arrived.

    :param flights: raw flights of the window and of the history days before it.
    :param weather: raw weather of the window.
    :param planes: the planes reference table.
    """
    flights = with_flight_date(flights)
    targets = flights.where(
        F.col("date").between(F.lit(start), F.lit(end)) & F.col("arr_delay").isNotNull()
    ).withColumn(LABEL_COLUMN, (F.col("arr_delay") >= DELAY_THRESHOLD_MINUTES).cast("int"))
    targets = schedule_features(targets)
    targets = weather_features(targets, weather)
    targets = plane_features(targets, planes)
    for name, keys in HISTORY_RATES:
        targets = trailing_delay_rate(targets, daily_delay_counts(flights, keys), keys, history_days, name)
    return targets.select(
        *(F.col(c) for c in KEY_COLUMNS if c != "date"),
        *(F.col(c).cast("double") for c in FEATURE_COLUMNS),
        F.col(LABEL_COLUMN),
        F.col("date"),
    )


def partition_paths(root: str, dataset: str, days: list[date]) -> list[str]:
    """Paths of the validated daily partitions of ``dataset``; fails naming every day that is
    missing or not validated (never ingested, quarantined, or rewritten since validation)."""
    paths = [under(root, layout.raw_partition_key(dataset, d)) for d in days]
    unvalidated = [p for p in paths if not Path(p, VALIDATED_MARKER).exists()]
    if unvalidated:
        raise FileNotFoundError(
            f"{len(unvalidated)} raw {dataset} partition(s) missing or not validated (no {VALIDATED_MARKER}; "
            f"failed ones are under {under(root, layout.QUARANTINE)}/{dataset}/): {unvalidated}"
        )
    return paths


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--start-date", required=True, type=date.fromisoformat)
    parser.add_argument("--end-date", required=True, type=date.fromisoformat)
    parser.add_argument("--history-start", required=True, type=date.fromisoformat,
                        help="first raw day to read for rolling history (the data may start later "
                             "than --start-date minus --history-days)")
    parser.add_argument("--history-days", type=int, default=14)
    args = parser.parse_args(argv)
    if not args.history_start <= args.start_date <= args.end_date:
        parser.error(f"dates must satisfy --history-start {args.history_start} <= --start-date "
                     f"{args.start_date} <= --end-date {args.end_date}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    root = args.data_root.rstrip("/")
    window = day_range(args.start_date, args.end_date)
    history = day_range(args.history_start, args.end_date)
    flights = spark.read.schema(RAW_FLIGHTS_SCHEMA).parquet(*partition_paths(root, FLIGHTS, history))
    weather = spark.read.schema(RAW_WEATHER_SCHEMA).parquet(*partition_paths(root, WEATHER, window))
    planes_path = under(root, layout.reference_key(PLANES))
    if not Path(planes_path, VALIDATED_MARKER).exists():
        raise FileNotFoundError(f"{planes_path} is not validated (no {VALIDATED_MARKER})")
    planes = spark.read.schema(PLANES_SCHEMA).parquet(planes_path)
    features = build_features(flights, weather, planes, start=args.start_date, end=args.end_date,
                              history_days=args.history_days)
    (features.repartition("date").write.mode("overwrite").partitionBy("date")
     .parquet(under(root, layout.FEATURES)))
    spark.stop()


if __name__ == "__main__":
    main()
