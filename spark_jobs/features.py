"""Feature job: one row per flight, with only what is known before departure, for a window of days.

Reads the raw flights of the window plus ``--history-days`` before it (for rolling delay rates),
the window's weather and the planes reference table (only validated partitions); publishes
``<data-root>/features/date=YYYY-MM-DD`` for every day of the window (other days are left alone): the
day's rows written by Spark into a folder of this run's own below it, then one manifest naming those
files (:mod:`flight_delays.partitions`), so that a reader never sees a half-written day and a killed
run leaves the previous publication in place. No rename, which object stores do not have.

Never used as features, because they are only known after departure: ``dep_time``, ``dep_delay``,
``arr_time``, ``arr_delay`` (except through the label and the history of *earlier* days) and
``air_time``.
"""

from __future__ import annotations

import argparse
import secrets
from datetime import date

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

from flight_delays import partitions
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
from flight_delays.layout import FLIGHTS, PLANES, WEATHER, DataLayout, StoragePath, spark_uri
from flight_delays.publication import PublicationError, latest, publish
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


def validated_paths(folders: list[StoragePath]) -> list[str]:
    """Spark's URIs of the data of ``folders`` (raw partitions), each its latest publication's, which
    passed the gate; fails naming every folder that was never ingested, is not validated since its
    last ingest, or failed (its copy is then under ``quarantine/``)."""
    found, refused = [], []
    for folder in folders:
        try:
            found.append(spark_uri(partitions.validated_data(folder)))
        except partitions.PartitionUnavailable as exc:
            refused.append(str(exc))
    if refused:
        raise partitions.PartitionUnavailable(f"{len(refused)} raw partition(s) cannot be read, only "
                                               "validated ones are:\n" + "\n".join(refused))
    return found


def publish_features(features: DataFrame, data: DataLayout, days: list[date], *,
                     writer: str) -> dict[date, int]:
    """Publish the rows of each of ``days`` as that day's feature partition; return the rows per day.

    Each day is written by Spark into ``features/date=D/<token>/`` (the token this run's own), one file
    a day, then published by a manifest naming the part files, as the version after the one the day
    had when this run started, created only if absent: a concurrent run that published the day first
    makes this one fail (:class:`~flight_delays.publication.PublicationConflict`), naming the day and
    the winner, with nothing of this run's left in that day.
    """
    token = secrets.token_hex(6)
    # What each day held when this run started: a run that published a day meanwhile wins it.
    bases = {day: latest(data.feature_partition(day)) for day in days}
    features = features.persist()
    rows = {day: count for day, count in features.groupBy("date").count().collect()}
    for day in days:
        folder = data.feature_partition(day)
        target = folder / token
        features.where(F.col("date") == F.lit(day)).coalesce(1).write.parquet(spark_uri(target))
        prefix = folder.path.rstrip("/") + "/"
        target.fs.invalidate_cache(target.path)
        parts = sorted(key.removeprefix(prefix) for key in target.fs.find(target.path)
                       if key.rsplit("/", 1)[-1].startswith("part-") and key.endswith(".parquet"))
        if not parts:
            raise RuntimeError(f"{folder}: Spark wrote no part file for {day} into {target}")
        try:
            publish(folder, {}, written={f"part-{i:05d}.parquet": part for i, part in enumerate(parts)},
                    writer=writer, meta={"rows": rows.get(day, 0)}, based_on=bases[day])
        except PublicationError:
            target.fs.rm(target.path, recursive=True)  # Spark's _SUCCESS and checksums with the parts
            raise
    features.unpersist()
    return {day: rows.get(day, 0) for day in days}


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
    data = DataLayout.for_job(args.data_root)
    window = day_range(args.start_date, args.end_date)
    history = day_range(args.history_start, args.end_date)
    flights = spark.read.schema(RAW_FLIGHTS_SCHEMA).parquet(
        *validated_paths([data.raw_partition(FLIGHTS, d) for d in history]))
    weather = spark.read.schema(RAW_WEATHER_SCHEMA).parquet(
        *validated_paths([data.raw_partition(WEATHER, d) for d in window]))
    planes = spark.read.schema(PLANES_SCHEMA).parquet(*validated_paths([data.reference(PLANES)]))
    features = build_features(flights, weather, planes, start=args.start_date, end=args.end_date,
                              history_days=args.history_days)
    publish_features(features, data, window, writer=f"SparkApplication {spark.sparkContext.appName}")
    spark.stop()


if __name__ == "__main__":
    main()
