"""Preview a backfill before starting it: its runs, the partitions each rewrites, and its params.

``make backfill-preview FROM=2013-06-01 TO=2013-06-07 CONF='{"history_days": 3}'`` prints one line
per run that ``airflow backfill create`` would create for those logical dates (the same timetable
call as Airflow's own ``--dry-run``), what each run would write into the current data root (the
raw days its ingest fills in, the feature days it recomputes, whether it trains), the params every
run gets (the DAG's defaults with the conf), and the command that starts it. Nothing is written.

Runs are previewed in date order, each one seeing what the runs before it wrote: with
``max_active_runs`` above 1 two runs may fill in the same missing history day; the result is the
same (partitions are replaced atomically), only the work is done twice.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
from datetime import date, datetime, timedelta, timezone

from devtools.demo import load_dag
from flight_delays.contract import DAG_ID
from flight_delays.layout import DataLayout, uri
from flight_delays.preflight import runs_training
from flight_delays.window import days_to_ingest, feature_plan, run_window


def backfill_dates(dag, start: date, end: date) -> list[tuple[datetime, datetime]]:
    """The data intervals of the runs a backfill of logical dates ``start``..``end`` creates."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    first = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    last = datetime(end.year, end.month, end.day, tzinfo=timezone.utc)
    restriction = TimeRestriction(earliest=first, latest=last, catchup=True)
    intervals, previous = [], None
    while (info := timetable.next_dagrun_info(last_automated_data_interval=previous,
                                              restriction=restriction)) is not None:
        intervals.append((info.data_interval.start, info.data_interval.end))
        previous = info.data_interval
    return intervals


def _span(days: list[date]) -> str:
    """``2013-05-23..2013-05-29, 2013-05-31 (8 day(s))``: runs of consecutive days, and the count."""
    if not days:
        return "-"
    groups: list[list[date]] = []
    for day in sorted(days):
        if groups and day - groups[-1][-1] == timedelta(days=1):
            groups[-1].append(day)
        else:
            groups.append([day])
    text = ", ".join(f"{g[0]}..{g[-1]}" if len(g) > 1 else str(g[0]) for g in groups)
    return f"{text} ({len(days)} day(s))" if len(days) > 1 else text


def preview(start: date, end: date, conf: dict | None = None, *, max_active_runs: int = 2) -> str:
    """The preview's text."""
    dag = load_dag()
    params = copy.deepcopy(dag.params)
    for key, value in (conf or {}).items():
        params[key] = value  # refused here exactly as Airflow refuses it
    values = params.validate()
    train = runs_training(backfill=True, backfill_training=values["backfill_training"])
    layout = DataLayout.from_env()
    runs = backfill_dates(dag, start, end)
    lines = [f"Backfill of {DAG_ID}: {len(runs)} run(s), logical dates {start}..{end}, "
             f"data root {uri(layout.root)}",
             f"params of every run: {json.dumps(values, sort_keys=True)}",
             "training: " + ("ON (backfill_training): every run trains and registers a model version; "
                             "none becomes champion" if train else
                             "off: runs stop after the features (set backfill_training to train)"),
             "",
             f"{'run (data interval)':<25} {'raw days ingested':<38} {'feature days rewritten':<30} trains"]
    ingested: set[date] = set()
    featurised: set[date] = set()
    for interval_start, interval_end in runs:
        window = run_window(interval_start.date(), train=train, window_days=values["window_days"],
                            history_days=values["history_days"])
        raw = days_to_ingest(layout, window, assume_ingested=frozenset(ingested))
        plan = feature_plan(layout, window, raw, values["history_days"],
                            assume_featurised=frozenset(featurised))
        feature_days = [d for d in window.raw_days() if date.fromisoformat(plan["feature_start"]) <= d]
        ingested.update(raw)
        featurised.update(feature_days)
        lines.append(f"{interval_start:%Y-%m-%d}..{interval_end:%Y-%m-%d}  {_span(raw):<38} "
                     f"{_span(feature_days):<30} {'yes' if train else 'no'}")
    lines += ["", "Every run also rewrites reports/date=D/report.json (and verdicts/date=D/ with "
              "validation_engine spark); days already run are rerun only with --reprocess-behavior.",
              "Start it with:",
              "  airflow backfill create --dag-id " + DAG_ID + f" --from-date {start} --to-date {end} "
              f"--max-active-runs {max_active_runs}"
              + (f" --dag-run-conf {shlex.quote(json.dumps(conf))}" if conf else "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", required=True, type=date.fromisoformat,
                        help="first logical date")
    parser.add_argument("--to", dest="end", required=True, type=date.fromisoformat, help="last logical date")
    parser.add_argument("--conf", type=json.loads, default=None, help="the backfill's run conf, as JSON")
    parser.add_argument("--max-active-runs", type=int, default=2)
    args = parser.parse_args(argv)
    print(preview(args.start, args.end, args.conf, max_active_runs=args.max_active_runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
