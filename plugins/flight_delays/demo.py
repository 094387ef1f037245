"""Run the retraining DAG once, in-process, on the embedded default, and print its report.

``make demo`` calls ``python -m flight_delays.demo --day 2013-06-30``. The run goes through
Airflow's ``dag.test()`` (real tasks, real XComs, the metadata database), local ``spark-submit``
and MLflow, exactly as the scheduler would run it, without starting the scheduler.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from flight_delays.settings import PROJECT_ROOT, DataLayout, source_day

if TYPE_CHECKING:
    from pathlib import Path

DAG_ID = "flight_delay_retraining"
DAG_FILE = PROJECT_ROOT / "dags" / "flight_delay_retraining.py"


def load_dag(dag_file: Path = DAG_FILE, dag_id: str = DAG_ID):
    """Parse ``dag_file`` as the DAG processor does and return the DAG; fail on import errors."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    if bag.import_errors:
        raise RuntimeError(f"{dag_file} does not import: {bag.import_errors}")
    return bag.dags[dag_id]


def run_dag(day: date, conf: dict | None = None):
    """Run the DAG with ``dag.test()`` on the data interval of ``day``; return the finished DagRun.

    Like a manual trigger, a run at logical date T processes the last complete interval before T,
    so the run for ``day`` is the one at the midnight that ends it.
    """
    end = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    return load_dag().test(logical_date=end, run_conf=conf or None)


def format_report(report: dict) -> str:
    """The run report as a few readable lines."""
    metrics = report["test_metrics"]
    model = report["model"]
    verdict = report["validation"]
    champion = ("none before" if model["champion_version"] is None else
                f"v{model['champion_version']}, test AUC {model['champion_test_auc']:.4f} on the same days")
    return "\n".join([
        f"Run report for {report['day']}",
        f"  rows ingested      {report['rows_ingested']['flights']} flights, "
        f"{report['rows_ingested']['weather']} weather hours ({report['days_ingested']} day(s) written)",
        f"  validation         {'passed' if verdict['passed'] else 'FAILED'} on {verdict['partitions']} "
        f"partition(s), {verdict['warnings']} warning(s)",
        f"  feature rows       {report['feature_rows']} for {report['day']}",
        f"  test metrics       AUC {metrics['test_auc']:.4f}, PR-AUC {metrics['test_pr_auc']:.4f}, "
        f"log loss {metrics['test_log_loss']:.4f}, Brier {metrics['test_brier']:.4f} "
        f"on {int(metrics['test_rows'])} flights",
        f"  registered model   {model['model_name']} version {model['version']} -> @{model['alias']} "
        f"(champion: {champion})",
        f"  promotion          {model['reason']}",
        "  spark cost inputs  " + "; ".join(
            f"{stage} {cost['wall_seconds']:.0f} s, {cost['executor_core_seconds']:.0f} executor core-s, "
            f"{cost['gpu_seconds']:.0f} GPU-s" for stage, cost in report["cost"]["stages"].items()),
    ])


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
    report_path = DataLayout.from_env().report(source_day(args.day))
    print(format_report(json.loads(report_path.read_text())))
    print(f"  full report        {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
