"""Preview the SparkApplications a run of the DAG would submit, as YAML files.

``make manifests DATE=2013-06-30`` writes ``build/manifests/2013-06-30/<task_id>.yaml`` for every
Spark stage, rendered by the operators' own :meth:`build_manifest` with the run's templated
arguments and profile, so what is reviewed is what would be applied; ``--conf`` previews a
triggered run or a backfill's conf. ``profiles/<task_id>.<profile>.yaml`` beside them shows every
resource profile of each job (``cpu``, ``gpu``, …) for the same run.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import yaml

from devtools.demo import load_dag
from flight_delays import settings
from flight_delays.layout import DataLayout
from flight_delays.preflight import runs_training
from flight_delays.settings import PROJECT_ROOT
from flight_delays.window import days_to_ingest, feature_plan, ingest_plan, run_window
from sparkapp.operators.spark_application import SparkApplicationOperator


class _PreviewTaskInstance:
    """What the templates and the operator read from ``ti``; XComs come from the run's plan."""

    def __init__(self, dag_id: str, task_id: str, xcoms: dict[str, object]) -> None:
        self.dag_id, self.task_id, self.map_index = dag_id, task_id, -1
        self._xcoms = xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value", **_) -> object:
        value = self._xcoms[task_ids]
        # The ingest task pushes each key of its result too (multiple_outputs).
        return value if key == "return_value" else value[key]


def render_run(day: date, conf: dict | None = None, *, backfill: bool = False,
               all_profiles: bool = False) -> dict[str, dict]:
    """The manifests of the run whose data interval is ``day``, by task id.

    :param backfill: the run is a backfill's: it submits no training unless its conf sets
        ``backfill_training``.
    :param all_profiles: render every profile of each job, keyed ``<task_id>.<profile>``, instead
        of the profile the run would use.
    """
    dag = load_dag()
    params = copy.deepcopy(dag.params)
    for key, value in (conf or {}).items():
        params[key] = value  # validated against the Param's schema, as a trigger form does
    values = params.validate()
    train = runs_training(backfill=backfill, backfill_training=values["backfill_training"])
    window = run_window(day, train=train, window_days=values["window_days"],
                        history_days=values["history_days"])
    # What the ingest task would return today: the days it would write into the current data root.
    layout = DataLayout.from_env()
    ingest_days = days_to_ingest(layout, window)
    features = feature_plan(layout, window, ingest_days, values["history_days"])
    ingested = ingest_plan(window, ingest_days, features)
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    manifests = {}
    for task in dag.tasks:
        if not isinstance(task, SparkApplicationOperator):
            continue
        # With the pandas engine, the run's branch validates in the worker: no validation application.
        skipped = ((task.task_id == "submit_validation" and values["validation_engine"] != "spark")
                   or (task.task_id == "submit_training" and not train))
        if skipped and not all_profiles:
            continue
        context = {"params": values, "settings": settings, "data_interval_start": start, "dag": dag,
                   "run_id": f"preview__{day.isoformat()}",
                   "ti": _PreviewTaskInstance(dag.dag_id, task.task_id, {"ingest": ingested})}
        env = dag.get_template_env()
        rendered = copy.copy(task)
        rendered.arguments = task.render_template(task.arguments, context, env)
        namespace = task.render_template(task.namespace, context, env)
        if not all_profiles:
            rendered.profile = task.render_template(task.profile, context, env)
            manifests[task.task_id] = rendered.build_manifest(context, namespace)
            continue
        for profile in task.job.profile_names:
            rendered.profile = profile
            manifests[f"{task.task_id}.{profile}"] = rendered.build_manifest(context, namespace)
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="the day of data of the run")
    parser.add_argument("--conf", type=json.loads, default=None, help="run conf (params) as JSON")
    parser.add_argument("--backfill", action="store_true", help="the run is a backfill's (no training unless "
                                                                "the conf sets backfill_training)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "manifests")
    args = parser.parse_args(argv)
    folder = args.out / args.date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles").mkdir(exist_ok=True)
    run = render_run(args.date, args.conf, backfill=args.backfill)
    written = [(folder / f"{key}.yaml", manifest) for key, manifest in run.items()]
    profiles = render_run(args.date, args.conf, backfill=args.backfill, all_profiles=True)
    written += [(folder / "profiles" / f"{key}.yaml", manifest) for key, manifest in profiles.items()]
    for path, manifest in written:
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
