"""The run report: what one run of the DAG did, as one type that builds, writes, reads and formats
itself. The ``report`` task writes it to ``reports/date=D/report.json`` under the data root; ``make
demo``, the benchmarks and the tests read it back through :meth:`RunReport.read`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from flight_delays.publication import latest

if TYPE_CHECKING:
    from flight_delays.layout import DataLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """One run's summary; JSON-able as it is (the ``report`` task's XCom is :meth:`as_dict`).

    :param day: the source day the run processed (ISO date).
    :param rows_ingested: rows written for that day, by dataset.
    :param days_ingested: raw days the run wrote (its own, plus any missing history).
    :param validation: the validation gate's summary.
    :param feature_rows: feature rows of that day.
    :param test_metrics: the training run's ``test_*`` metrics; None when the run did not train.
    :param model: the registered version, its alias and the promotion decision; None likewise.
    :param cost: the cost inputs of each Spark stage (``stages``) and their ``total``.
    """

    day: str
    rows_ingested: dict[str, int]
    days_ingested: int
    validation: dict[str, Any]
    feature_rows: int
    test_metrics: dict[str, float] | None
    model: dict[str, Any] | None
    cost: dict[str, Any]

    @classmethod
    def build(cls, layout: DataLayout, ingested: dict, verdict: dict, registration: dict | None,
              decision: dict | None, *, costs: dict[str, dict | None] | None = None,
              tracking_uri: str | None = None) -> RunReport:
        """The report of a run, from what its tasks returned.

        :param ingested: the ingest task's result.
        :param verdict: the validation gate's summary.
        :param registration: the registered model version; None when the run did not train.
        :param decision: the promotion decision; None likewise.
        :param costs: the cost inputs of each Spark stage that ran (:mod:`sparkapp.cost`), by stage
            name; they are logged, kept in the report and, when the run trained, logged as MLflow
            metrics ``cost.<stage>.<figure>`` and ``cost.total.<figure>`` on the training run.
        :param tracking_uri: MLflow, where the training run's test metrics are read.
        """
        from sparkapp.cost import ApplicationCost, total

        stage_costs = {stage: ApplicationCost.from_dict(c) for stage, c in (costs or {}).items() if c}
        day = date.fromisoformat(ingested["day"])
        features = latest(layout.feature_partition(day))
        cost = {"stages": {stage: c.as_dict() for stage, c in stage_costs.items()},
                "total": total(stage_costs.values())}
        for stage, stage_cost in stage_costs.items():
            log.info("Cost inputs of the %s stage (%s): %s", stage, stage_cost.application,
                     stage_cost.describe())
        log.info("Cost inputs of the run of %s: %s", day, cost["total"])
        test_metrics = model = None
        if registration is not None:
            import mlflow

            client = mlflow.MlflowClient(tracking_uri=tracking_uri)
            log_cost_metrics(client, registration["run_id"], cost)
            run = client.get_run(registration["run_id"])
            test_metrics = {k: v for k, v in sorted(run.data.metrics.items()) if k.startswith("test_")}
            model = {**registration, "alias": decision["alias"], "reason": decision["reason"],
                     "test_auc": decision["scores"]["auc"], "champion_version": decision["champion_version"],
                     "champion_test_auc": (decision["champion_scores"] or {}).get("auc")}
        return cls(day=ingested["day"], rows_ingested=ingested["rows"],
                   days_ingested=len(ingested["ingested_days"]), validation=verdict,
                   feature_rows=features.meta["rows"] if features else 0,
                   test_metrics=test_metrics, model=model, cost=cost)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RunReport:
        return cls(**document)

    def write(self, layout: DataLayout) -> None:
        """Write the report under ``layout``'s data root, replacing the previous one atomically."""
        from flight_delays.publication import write_whole

        write_whole(layout.report(date.fromisoformat(self.day)),
                    json.dumps(self.as_dict(), indent=2, default=str).encode())

    @classmethod
    def read(cls, layout: DataLayout, day: date) -> RunReport:
        """The report of the run that processed ``day``."""
        return cls.from_dict(json.loads(layout.report(day).read_text()))

    def format(self) -> str:
        """The report as a few readable lines (a run that trained)."""
        metrics = self.test_metrics
        model = self.model
        verdict = self.validation
        champion = "none before" if model["champion_version"] is None else (
            f"v{model['champion_version']}, test AUC {model['champion_test_auc']:.4f} on the same days")
        return "\n".join([
            f"Run report for {self.day}",
            f"  rows ingested      {self.rows_ingested['flights']} flights, "
            f"{self.rows_ingested['weather']} weather hours ({self.days_ingested} day(s) written)",
            f"  validation         {'passed' if verdict['passed'] else 'FAILED'} on {verdict['partitions']} "
            f"partition(s), {verdict['warnings']} warning(s)",
            f"  feature rows       {self.feature_rows} for {self.day}",
            f"  test metrics       AUC {metrics['test_auc']:.4f}, PR-AUC {metrics['test_pr_auc']:.4f}, "
            f"log loss {metrics['test_log_loss']:.4f}, Brier {metrics['test_brier']:.4f} "
            f"on {int(metrics['test_rows'])} flights",
            f"  registered model   {model['model_name']} version {model['version']} -> @{model['alias']} "
            f"(champion: {champion})",
            f"  promotion          {model['reason']}",
            "  spark cost inputs  " + "; ".join(
                f"{stage} {cost['wall_seconds']:.0f} s, {cost['executor_core_seconds']:.0f} executor core-s, "
                f"{cost['gpu_seconds']:.0f} GPU-s" for stage, cost in self.cost["stages"].items()),
        ])


def log_cost_metrics(client, run_id: str, cost: dict) -> None:
    """Log a run report's cost inputs on the MLflow run of its model: ``cost.<stage>.<figure>`` for
    each stage's summed figures, ``cost.total.<figure>`` for the run's."""
    import time

    from mlflow.entities import Metric

    from sparkapp.cost import SUMMED

    now = int(time.time() * 1000)
    figures = {f"cost.{stage}.{name}": stage_cost[name]
               for stage, stage_cost in cost["stages"].items() for name in SUMMED}
    figures.update({f"cost.total.{name}": value for name, value in cost["total"].items()})
    client.log_batch(run_id, metrics=[Metric(key, float(value), now, 0) for key, value in figures.items()])
