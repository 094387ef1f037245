"""Validate raw partitions with Great Expectations 1.x suites kept as data in ``include/expectations``.

Each expectation carries a GX severity: a failed ``critical`` one fails the validation task (nothing
downstream runs for that interval), ``warning`` and ``info`` failures are logged and recorded. The
full GX result is written next to the partition as ``_validation.json``.

GX runs in-process through a ``ValidationDefinition`` on an ephemeral context: a day is ~1,000 rows,
validated in tens of milliseconds, with no GX project directory to deploy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from flight_delays.ingest import DAILY_DATASETS, write_json_atomically
from flight_delays.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from datetime import date

    import pandas as pd

    from flight_delays.settings import DataLayout

log = logging.getLogger(__name__)

SUITES_DIR = PROJECT_ROOT / "include" / "expectations"
RESULT_FILE = "_validation.json"
MAX_EXAMPLES = 5


class DataValidationError(ValueError):
    """A partition failed at least one critical expectation."""


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that a partition did not meet."""

    dataset: str
    day: str
    expectation: str
    column: str | None
    severity: str
    observed: Any
    examples: list[Any]

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        text = f"[{self.severity}] {self.dataset} {self.day}: {self.expectation} on {where}"
        if self.observed is not None:
            text += f", observed {self.observed!r}"
        if self.examples:
            text += f", e.g. {self.examples!r}"
        return text


@dataclass
class Verdict:
    """What validation concluded about a set of partitions."""

    partitions: int = 0
    failures: list[FailedExpectation] = field(default_factory=list)

    @property
    def critical(self) -> list[FailedExpectation]:
        return [f for f in self.failures if f.severity == "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical

    def summary(self) -> dict[str, Any]:
        return {"partitions": self.partitions, "passed": self.passed,
                "critical_failures": len(self.critical),
                "warnings": len(self.failures) - len(self.critical),
                "failures": [f.describe() for f in self.failures]}


class PartitionValidator:
    """Runs the dataset suites of ``include/expectations`` on raw partitions.

    :param suites_dir: folder holding one ``<dataset>.json`` suite per dataset.
    """

    def __init__(self, suites_dir=SUITES_DIR) -> None:
        self.suites_dir = suites_dir

    @cached_property
    def _definitions(self) -> dict:
        # GX's import costs seconds and logs one line per function it registers: import on first use.
        logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas("raw")
        definitions = {}
        for dataset in DAILY_DATASETS:
            suite_json = json.loads((self.suites_dir / f"{dataset}.json").read_text())
            suite = context.suites.add(gx.ExpectationSuite(**suite_json))
            batch = source.add_dataframe_asset(dataset).add_batch_definition_whole_dataframe("partition")
            definitions[dataset] = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{dataset}-partition", data=batch, suite=suite)
            )
        return definitions

    def validate_frame(self, dataset: str, day: date,
                       frame: pd.DataFrame) -> tuple[dict, list[FailedExpectation]]:
        """Validate one day of ``dataset``; return the GX result (JSON-able) and what failed."""
        result = self._definitions[dataset].run(batch_parameters={"dataframe": frame})
        failures = [
            FailedExpectation(
                dataset=dataset,
                day=day.isoformat(),
                expectation=r.expectation_config.type,
                column=r.expectation_config.kwargs.get("column"),
                severity=str(getattr(r.expectation_config.severity, "value", r.expectation_config.severity)),
                observed=r.result.get("observed_value", r.result.get("unexpected_count")),
                examples=list(r.result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES],
            )
            for r in result.results
            if not r.success
        ]
        return result.to_json_dict(), failures

    def validate_days(self, layout: DataLayout, days: list[date]) -> Verdict:
        """Validate every partition of ``days``; raise :class:`DataValidationError` on critical failures.

        Every partition is validated and its result written before the error is raised, so one
        message lists everything that is wrong.
        """
        import pandas as pd

        verdict = Verdict()
        for day in days:
            for dataset in DAILY_DATASETS:
                partition = layout.raw_partition(dataset, day)
                frame = pd.read_parquet(partition / "data.parquet")
                result, failures = self.validate_frame(dataset, day, frame)
                write_json_atomically(result, partition / RESULT_FILE)
                verdict.partitions += 1
                verdict.failures.extend(failures)
        for failure in verdict.failures:
            log.warning("Expectation failed: %s", failure.describe())
        if not verdict.passed:
            raise DataValidationError(
                f"{len(verdict.critical)} critical expectation(s) failed on "
                f"{verdict.partitions} partition(s):\n"
                + "\n".join(f.describe() for f in verdict.critical)
            )
        log.info("Validated %d partition(s): no critical failure, %d warning(s)",
                 verdict.partitions, len(verdict.failures))
        return verdict
