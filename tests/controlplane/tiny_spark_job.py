"""A Spark job of a few seconds for the driver executor's local runs (tests/controlplane/test_kwok_pods.py).

``tiny_spark_job.py N`` sums 1..N with Spark and prints the sum; ``tiny_spark_job.py N --fail``
exits with status 3 before starting Spark, as a job refusing its arguments does.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    n = int(argv[0])
    if "--fail" in argv:
        print(f"refusing to sum 1..{n}: asked to fail", flush=True)
        return 3
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("tiny-spark-job").getOrCreate()
    try:
        total = spark.range(1, n + 1).groupBy().sum("id").first()[0]
    finally:
        spark.stop()
    print(f"sum of 1..{n} = {total}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
