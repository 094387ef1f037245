"""Run the retraining DAG once, in-process, on the embedded default, and print its report.

``make demo`` calls ``python -m devtools.demo --day 2013-06-30``. The run goes through
Airflow's ``dag.test()`` (real tasks, real XComs, the metadata database), local ``spark-submit``
and MLflow, exactly as the scheduler would run it, without starting the scheduler.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from flight_delays.contract import DAG_ID
from flight_delays.layout import DataLayout
from flight_delays.report import RunReport
from flight_delays.settings import PROJECT_ROOT
from flight_delays.window import source_day

if TYPE_CHECKING:
    from pathlib import Path

DAG_FILE = PROJECT_ROOT / "dags" / f"{DAG_ID}.py"


def load_dag(dag_file: Path = DAG_FILE, dag_id: str = DAG_ID):
    """Parse ``dag_file`` as the DAG processor does and return the DAG; fail on import errors."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    if bag.import_errors:
        raise RuntimeError(f"{dag_file} does not import: {bag.import_errors}")
    if dag_id not in bag.dags:
        raise RuntimeError(f"{dag_file} defines no DAG {dag_id!r} (it defines {sorted(bag.dags) or 'none'})")
    return bag.dags[dag_id]


def run_dag(day: date, conf: dict | None = None):
    """Run the DAG with ``dag.test()`` on the data interval of ``day``; return the finished DagRun.

    Like a manual trigger, a run at logical date T processes the last complete interval before T,
    so the run for ``day`` is the one at the midnight that ends it.
    """
    end = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    return load_dag().test(logical_date=end, run_conf=conf or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 6, 30),
                        help="the day of data to process: the run's data interval (default 2013-06-30)")
    parser.add_argument("--conf", type=json.loads, default=None, help="run conf (params) as JSON")
    args = parser.parse_args(argv)
    dag_run = run_dag(args.day, args.conf)
    if dag_run.state != "success":
        print(f"DAG run {dag_run.run_id} ended {dag_run.state}: see the task logs above.", file=sys.stderr)
        return 1
    layout = DataLayout.from_env()
    print(RunReport.read(layout, source_day(args.day)).format())
    print(f"  full report        {layout.report(source_day(args.day))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
