"""Benchmark: the nightly feature job with a 7-day and a 90-day window, and training time per
trainer at 1x and 10x the real data, each as the DAG's own SparkApplication on the local backend.

    .venv/bin/python bench/bench_training.py [--day 2013-06-30] [--skip-training]

Everything runs in a temporary data root and MLflow store. Steps:

1. ingest and validate the 104 days before ``--day`` and compute their features once (not timed);
2. the nightly run of ``--day``: ingest and validate it, then time the feature job the DAG submits
   (``feature_plan`` decides the days) for a 7-day and a 90-day window (target: 90-day <= 1.3x 7-day);
3. training on the 28-day window ending on ``--day`` with each trainer (xgboost, torch) on the real
   features (1x) and on 10 copies of them (10x, flight numbers shifted), num_workers 2, CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]
from devtools.environment import embedded_default  # noqa: E402  (after sys.path)

for _name, _value in embedded_default(python=sys.executable).items():  # unless the caller set them
    if _name in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "AIRFLOW_CONN_SPARK_DEFAULT"):
        os.environ.setdefault(_name, _value)
HISTORY_DAYS = 14
FEATURE_TARGET = 1.3


def run_application(job, name: str, arguments: list[str], state_dir: Path) -> float:
    from sparkapp.application import render_manifest
    from sparkapp.hooks.local import LocalSparkApplicationClient

    manifest = render_manifest(job, name=name, namespace="bench", arguments=arguments)
    start = time.perf_counter()
    application = LocalSparkApplicationClient(state_dir=state_dir).create_application(manifest)
    seconds = time.perf_counter() - start
    if application["status"]["applicationState"]["state"] != "COMPLETED":
        raise RuntimeError(f"{name} failed: {application['status']}")
    return seconds


def prepare(layout, day: date, state_dir: Path) -> None:
    from flight_delays.ingest import ingest_day, ingest_reference
    from flight_delays.jobs import FEATURES_JOB
    from flight_delays.validation import PartitionValidator

    first = day - timedelta(days=90 + HISTORY_DAYS)
    days = [first + timedelta(days=i) for i in range((day - first).days)]
    for d in days:
        ingest_day(layout, d)
    ingest_reference(layout)
    PartitionValidator().validate_days(layout, days, reference=True)
    end = day - timedelta(days=1)
    run_application(FEATURES_JOB, "features-bootstrap", [
        "--data-root", str(layout.root), "--start-date", (end - timedelta(days=89)).isoformat(),
        "--end-date", end.isoformat(), "--history-start", first.isoformat(),
        "--history-days", str(HISTORY_DAYS)], state_dir)


def nightly_feature_job(layout, day: date, window_days: int, state_dir: Path) -> tuple[float, dict]:
    from flight_delays.jobs import FEATURES_JOB
    from flight_delays.tasks import feature_plan
    from flight_delays.window import RunWindow

    window = RunWindow.for_day(day, window_days=window_days, history_days=HISTORY_DAYS)
    plan = feature_plan(layout, window, [day], HISTORY_DAYS)
    seconds = run_application(FEATURES_JOB, f"features-{window_days}", [
        "--data-root", str(layout.root), "--start-date", plan["feature_start"], "--end-date", day.isoformat(),
        "--history-start", plan["feature_history_start"], "--history-days", str(HISTORY_DAYS)], state_dir)
    return seconds, plan


def scaled_root(layout, folder: Path, day: date, factor: int):
    """A data root whose 28 feature days hold ``factor`` copies of the real rows."""
    import pandas as pd
    import pyarrow.parquet as pq

    from flight_delays.layout import DataLayout
    from flight_delays.partitions import feature_files, publish_feature_frame

    scaled = DataLayout(folder)
    for i in range(28):
        d = day - timedelta(days=i)
        frame = pd.concat([pq.ParquetFile(part.path).read().to_pandas()
                           for part in feature_files(layout.feature_partition(d))], ignore_index=True)
        copies = pd.concat([frame.assign(flight=frame.flight + 10_000 * k) for k in range(factor)],
                           ignore_index=True)
        publish_feature_frame(scaled.feature_partition(d), copies, writer="bench")
    return scaled


def train(layout, day: date, trainer: str, mlflow_dir: Path, state_dir: Path, label: str) -> float:
    from flight_delays.jobs import TRAIN_JOB

    return run_application(TRAIN_JOB, f"train-{trainer}-{label}", [
        "--data-root", str(layout.root), "--start-date", (day - timedelta(days=27)).isoformat(),
        "--end-date", day.isoformat(), "--trainer", trainer, "--num-workers", "2",
        "--mlflow-tracking-uri", f"sqlite:///{mlflow_dir / 'mlflow.db'}", "--mlflow-experiment", "bench",
        "--mlflow-artifact-location", str(mlflow_dir / "artifacts")], state_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 6, 30))
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    from flight_delays.ingest import ingest_day
    from flight_delays.layout import DataLayout
    from flight_delays.validation import PartitionValidator

    folder = Path(tempfile.mkdtemp(prefix="bench-training-"))
    try:
        layout, state_dir = DataLayout(folder / "data"), folder / "applications"
        start = time.perf_counter()
        prepare(layout, args.day, state_dir)
        print(f"prepared 104 validated days and 90 days of features in {time.perf_counter() - start:.0f} s")
        ingest_day(layout, args.day)
        PartitionValidator().validate_days(layout, [args.day])
        feature_rows = []
        for window_days in (7, 90):
            seconds, plan = nightly_feature_job(layout, args.day, window_days, state_dir)
            shutil.rmtree(layout.feature_partition(args.day).path)  # the next window computes it again
            feature_rows.append((window_days, seconds, plan))
        training_rows = []
        if not args.skip_training:
            nightly_feature_job(layout, args.day, 7, state_dir)
            roots = {1: layout, 10: scaled_root(layout, folder / "data10", args.day, 10)}
            for trainer in ("xgboost", "torch"):
                for factor, root in roots.items():
                    seconds = train(root, args.day, trainer, folder / "mlflow", state_dir, f"{factor}x")
                    training_rows.append((trainer, factor, seconds))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"Nightly feature job and training, {datetime.now(timezone.utc):%Y-%m-%d}, 2 CPUs, local[2]")
    print(f"command: .venv/bin/python bench/bench_training.py --day {args.day}"
          + (" --skip-training" if args.skip_training else ""))
    print("feature job of the nightly run (spark-submit wall time, JVM start included):")
    for window_days, seconds, plan in feature_rows:
        print(f"  window {window_days:>3} days: {seconds:6.1f} s  computes {plan['feature_start']}.."
              f"{args.day}, reads raw from {plan['feature_history_start']}")
    ratio = feature_rows[1][1] / feature_rows[0][1]
    met = "met" if ratio <= FEATURE_TARGET else "NOT met"
    print(f"  90-day / 7-day: {ratio:.2f} (target <= {FEATURE_TARGET}: {met})")
    if training_rows:
        print("training job, 28-day window, num_workers 2, CPU (spark-submit wall time):")
        for trainer, factor, seconds in training_rows:
            print(f"  {trainer:>8} {factor:>3}x: {seconds:6.1f} s")
    return 0 if ratio <= FEATURE_TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
