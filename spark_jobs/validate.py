"""Validation job: the Great Expectations gate of ``flight_delays.validation`` on GX's Spark engine,
for partitions too large to validate in an Airflow worker.

It runs the same suite files, marks, keeps results and quarantines exactly as the in-process gate,
then writes the verdict to ``<data-root>/verdicts/date=<day>/verdict.json`` with the application's
name, where the DAG's ``validate`` task reads it (a driver on Kubernetes cannot push XCom). Bad
data is a verdict, not a failure of the job: the job fails only when it cannot validate.
"""

from __future__ import annotations

import argparse
import json
from datetime import date

from pyspark.sql import SparkSession

from flight_delays.layout import DataLayout
from flight_delays.publication import write_whole
from flight_delays.validation import PartitionValidator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--day", type=date.fromisoformat, required=True,
                        help="the run's day: the verdict is filed under it")
    parser.add_argument("--days", required=True,
                        type=lambda text: [date.fromisoformat(d) for d in text.split(",")],
                        help="comma-separated days whose raw partitions are validated")
    parser.add_argument("--reference", action="store_true", help="validate the planes reference table too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    layout = DataLayout.for_job(args.data_root)
    application = spark.sparkContext.appName
    validator = PartitionValidator(docs_dir=layout.data_docs, engine="spark", spark=spark,
                                   writer=f"SparkApplication {application}")
    verdict = validator.judge(layout, args.days, reference=args.reference)
    summary = {"application": application, "days": [d.isoformat() for d in args.days],
               **verdict.summary()}
    write_whole(layout.verdict(args.day), json.dumps(summary, indent=2, default=str).encode())
    print(f"Validated {verdict.partitions} partition(s): {len(verdict.critical)} critical failure(s), "
          f"{len(verdict.failures) - len(verdict.critical)} warning(s); verdict in "
          f"{layout.verdict(args.day)}")
    spark.stop()


if __name__ == "__main__":
    main()
