"""The run report: what one run of the DAG did, as one type that builds, writes, reads and formats
itself. The ``report`` task writes it to ``reports/date=D/report.json`` under the data root; ``make
demo``, the benchmarks and the tests read it back through :meth:`RunReport.read`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import date

    from flight_delays.layout import DataLayout


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RunReport:
        return cls(**document)

    def write(self, layout: DataLayout) -> None:
        """Write the report under ``layout``'s data root, replacing the previous one atomically."""
        from datetime import date

        from flight_delays.ingest import write_json_atomically

        write_json_atomically(self.as_dict(), layout.report(date.fromisoformat(self.day)))

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
