"""The cost inputs of a SparkApplication: how long it ran, times what it asked for.

A cluster's bill is per resource-second, so the inputs a cost report needs are the application's
wall time and the cores and GPUs it requested: core-seconds of the driver and the executors, and
GPU-seconds. The wall time is the application's last submission attempt to its termination, both
from the Spark Operator's ``status`` (the local backend records the same two fields). Earlier
attempts of a restarted application are not counted: their timings are not kept in ``status``.
Requested resources are the spec's (``instances`` executors of ``cores`` cores and ``gpu.quantity``
GPUs each), which is what the scheduler reserves for the whole run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True)
class ApplicationCost:
    """The cost inputs of one application run.

    :param application: the application's name.
    :param wall_seconds: from its last submission attempt to its termination.
    :param executors: executors requested (``spec.executor.instances``).
    :param executor_cores: cores of each executor.
    :param gpus: GPUs requested by the driver and all executors together.
    :param driver_core_seconds: driver cores x wall seconds.
    :param executor_core_seconds: executors x their cores x wall seconds.
    :param gpu_seconds: GPUs x wall seconds.
    """

    application: str
    wall_seconds: float
    executors: int
    executor_cores: int
    gpus: int
    driver_core_seconds: float
    executor_core_seconds: float
    gpu_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ApplicationCost:
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def describe(self) -> str:
        return (f"{self.wall_seconds:.0f} s wall, {self.executor_core_seconds:.0f} executor core-seconds "
                f"({self.executors} executor(s) x {self.executor_cores} core(s)), "
                f"{self.driver_core_seconds:.0f} driver core-seconds, {self.gpu_seconds:.0f} GPU-seconds "
                f"({self.gpus} GPU(s))")


#: The figures that add up over the applications of a run.
SUMMED = ("wall_seconds", "driver_core_seconds", "executor_core_seconds", "gpu_seconds")


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def application_cost(application: dict) -> ApplicationCost | None:
    """The cost inputs of a terminated application, or None while it has no termination time."""
    status, spec = application.get("status", {}), application.get("spec", {})
    started, ended = status.get("lastSubmissionAttemptTime"), status.get("terminationTime")
    if not started or not ended:
        return None
    wall = max(0.0, (_timestamp(ended) - _timestamp(started)).total_seconds())
    driver, executor = spec.get("driver", {}), spec.get("executor", {})
    executors = int(executor.get("instances", 1))
    executor_cores = int(executor.get("cores", 1))
    gpus = (int(driver.get("gpu", {}).get("quantity", 0))
            + executors * int(executor.get("gpu", {}).get("quantity", 0)))
    return ApplicationCost(
        application=application["metadata"]["name"],
        wall_seconds=wall,
        executors=executors,
        executor_cores=executor_cores,
        gpus=gpus,
        driver_core_seconds=int(driver.get("cores", 1)) * wall,
        executor_core_seconds=executors * executor_cores * wall,
        gpu_seconds=gpus * wall,
    )


def total(costs: Iterable[ApplicationCost]) -> dict[str, float]:
    """The summed figures of several applications (e.g. every stage of one DAG run)."""
    costs = list(costs)
    return {name: sum(getattr(cost, name) for cost in costs) for name in SUMMED}
