"""Benchmark: a 30-day backfill in a real local Airflow; is the cost per day flat as history grows?

    .venv/bin/python bench/bench_backfill.py [--from 2013-07-01] [--days 30] [--max-active-runs 2]

Starts Airflow as ``make airflow`` does (the tests' harness, :mod:`testing.airflow_harness`) on an
empty data root, creates one backfill of ``--days`` days through ``POST /api/v2/backfills`` (default
params: no training, 14 history days), waits for it, and reads every run and task instance back
from the REST API. Printed (and returned as JSON with ``--json``):

* total wall time, from the backfill's creation to its completion;
* time per day, for the first and the last 10 runs: a run's own duration (start to end), and the
  backfill's throughput (runs completed per wall second over those runs); the target is
  last-10 / first-10 per-day time <= 1.2;
* the scheduler's overhead per task: queued -> running (``start_date - queued_when``) and
  scheduled -> queued, median and 95th percentile over every task instance that ran; and the
  hand-off between tasks (a task's start minus the end of the task before it in its run, the runs
  being linear chains here), which is where the scheduler's loop and the task process's start show.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]


def seconds(start: str | None, end: str | None) -> float | None:
    if not (start and end):
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _by_task(task_instances: list[dict]) -> dict[str, list[float]]:
    """Each task's run times, in run order."""
    per_task: dict[str, list[float]] = {}
    for ti in task_instances:
        per_task.setdefault(ti["task_id"], []).append(seconds(ti["start_date"], ti["end_date"]))
    return per_task


def run(first_day: date, days: int, max_active_runs: int) -> dict:
    import httpx

    from testing.airflow_harness import (
        DAG_ID,
        Launcher,
        create_backfill,
        log_in,
        stop_with_sigint,
        unpause_parsed_dag,
    )

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder:
        airflow = Launcher(Path(folder))
        airflow.start()
        try:
            with httpx.Client(base_url=airflow.url, timeout=60) as api:
                log_in(airflow, api)
                unpause_parsed_dag(airflow, api)
                last_day = first_day + timedelta(days=days - 1)
                created = time.monotonic()
                backfill = create_backfill(api, {
                    "dag_id": DAG_ID, "from_date": f"{first_day}T00:00:00Z",
                    "to_date": f"{last_day}T00:00:00Z", "max_active_runs": max_active_runs})
                airflow.wait_for("the backfill", lambda: api.get(
                    f"/api/v2/backfills/{backfill['id']}").json()["completed_at"], timeout=4 * 3600, every=10)
                total = time.monotonic() - created
                listed = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 1000}).json()
                runs = sorted(listed["dag_runs"], key=lambda r: r["logical_date"])
                tis = []
                for r in runs:
                    url = f"/api/v2/dags/{DAG_ID}/dagRuns/{r['dag_run_id']}/taskInstances"
                    tis += api.get(url).json()["task_instances"]
            stop_with_sigint(airflow)
        except BaseException:
            print(airflow.diagnostics())
            airflow.kill_everything()
            raise
    states = sorted({r["state"] for r in runs})
    durations = [seconds(r["start_date"], r["end_date"]) for r in runs]
    ran = [ti for ti in tis if ti["start_date"] and ti["state"] == "success"]
    queued_to_running = [seconds(ti["queued_when"], ti["start_date"]) for ti in ran if ti["queued_when"]]
    scheduled_to_queued = [seconds(ti["scheduled_when"], ti["queued_when"]) for ti in ran
                           if ti.get("scheduled_when") and ti["queued_when"]]

    handoffs = []
    for r in runs:
        chain = sorted((ti for ti in ran if ti["dag_run_id"] == r["dag_run_id"]),
                       key=lambda ti: ti["start_date"])
        handoffs += [seconds(a["end_date"], b["start_date"]) for a, b in itertools.pairwise(chain)]

    def throughput_per_day(group: list[dict]) -> float:
        """Wall seconds per completed run over the group (overlapping runs share the wall time)."""
        return seconds(min(r["start_date"] for r in group), max(r["end_date"] for r in group)) / len(group)

    first10, last10 = runs[:10], runs[-10:]
    per_task = _by_task(ran)
    result = {
        "days": days, "max_active_runs": max_active_runs, "run_states": states, "total_s": round(total, 1),
        "run_duration_first10_s": round(statistics.mean(durations[:10]), 2),
        "run_duration_last10_s": round(statistics.mean(durations[-10:]), 2),
        "wall_per_day_first10_s": round(throughput_per_day(first10), 2),
        "wall_per_day_last10_s": round(throughput_per_day(last10), 2),
        "queued_to_running_median_s": round(statistics.median(queued_to_running), 2),
        "queued_to_running_p95_s": round(percentile(queued_to_running, 0.95), 2),
        "scheduled_to_queued_median_s": round(statistics.median(scheduled_to_queued), 2)
        if scheduled_to_queued else None,
        "scheduled_to_queued_p95_s": round(percentile(scheduled_to_queued, 0.95), 2)
        if scheduled_to_queued else None,
        "handoff_median_s": round(statistics.median(handoffs), 2),
        "handoff_p95_s": round(percentile(handoffs, 0.95), 2),
        "run_overhead_s": round(statistics.mean(durations) - sum(
            statistics.mean(v) for v in _by_task(ran).values()), 2),
        "task_instances": len(ran),
        "task_median_s": {k: round(statistics.median(v), 2) for k, v in sorted(per_task.items())},
        "task_first10_vs_last10_s": {
            k: (round(statistics.mean(v[:10]), 2), round(statistics.mean(v[-10:]), 2))
            for k, v in sorted(per_task.items()) if len(v) >= 20},
    }
    for name, figure in (("ratio_run_duration", "run_duration"), ("ratio_wall_per_day", "wall_per_day")):
        result[name] = round(result[f"{figure}_last10_s"] / result[f"{figure}_first10_s"], 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", type=date.fromisoformat, default=date(2013, 7, 1))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--max-active-runs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result = run(args.start, args.days, args.max_active_runs)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["run_states"] == ["success"] and result["ratio_wall_per_day"] <= 1.2
    print(f"last-10 / first-10 wall time per day: {result['ratio_wall_per_day']} (target <= 1.2); "
          f"run duration ratio {result['ratio_run_duration']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
