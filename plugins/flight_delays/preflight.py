"""The run's first task: what the params' JSON schema cannot check, checked before any work starts.

Airflow refuses a param outside its schema (type, enum, bounds) when the run is triggered. What
depends on the run's day, on other params or on the machine is checked here, all at once, so a
wrong run fails in seconds with every problem listed instead of an hour later in a Spark job:

* the request (:class:`BadRunRequest`, not retried: the same request fails the same way): the
  window fits the data and leaves training days, ``force`` has a reason, ``cuda`` has a GPU to use,
  ``horovod`` is installed where the job runs locally;
* the environment (:class:`PreflightError`, retried: an API server may come back): the data root is
  writable, the Spark connection resolves (and, on Kubernetes, the API lists SparkApplications),
  the MLflow tracking server answers.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flight_delays import layout, settings
from flight_delays.window import FIRST_SOURCE_DAY, RunWindow, source_day

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date

log = logging.getLogger(__name__)


class BadRunRequest(ValueError):
    """The run's params cannot work for its day: fix the request (a retry would fail the same way)."""


class PreflightError(RuntimeError):
    """Something the run needs is not reachable or not writable now."""


@dataclass(frozen=True)
class RunPlan:
    """What the preflight found the run will do, for the tasks after it.

    :param day: the run's day (its data interval's start).
    :param source_day: the day of 2013 whose flights it processes.
    :param train: whether it trains, registers and promotes a model (a backfill run does not unless
        its ``backfill_training`` param says so).
    :param checked: what the environment checks reached, for the task log.
    """

    day: str
    source_day: str
    train: bool
    checked: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def runs_training(*, backfill: bool, backfill_training: bool) -> bool:
    """Scheduled and manual runs train; backfill runs only when asked (rebuilding a year of history
    should not train 365 models)."""
    return not backfill or backfill_training


def request_problems(day: date, params: Mapping, *, train: bool, backend: str) -> list[str]:
    """What is wrong with the run's params for ``day`` (empty when nothing)."""
    from flight_delays.ingest import FLIGHTS, source_rows
    from flight_delays.registry import PromotionRequest, PromotionRequestError

    problems = []
    processed = source_day(day)
    if source_rows(FLIGHTS, processed).empty:
        problems.append(f"the source has no flights on {processed} (the day the run of {day} processes)")
    if train:
        held_out = params["test_days"] + params["validation_days"]
        window = RunWindow.for_day(processed, window_days=params["window_days"],
                                   history_days=params["history_days"])
        window_length = (window.day - window.train_start).days + 1
        if held_out >= params["window_days"]:
            problems.append(f"test_days ({params['test_days']}) + validation_days "
                            f"({params['validation_days']}) must be smaller than window_days "
                            f"({params['window_days']}): the window needs at least one training day "
                            "before the validation and test days")
        elif held_out >= window_length:
            problems.append(f"the training window of {processed} starts on the first day of data "
                            f"({FIRST_SOURCE_DAY}), so it has {window_length} day(s), not "
                            f"{params['window_days']}: too few for {params['test_days']} test + "
                            f"{params['validation_days']} validation day(s) and a training day")
        try:
            PromotionRequest(policy=params["promotion_policy"], margin=params["promotion_margin"],
                             reason=params["promotion_reason"] or "").check()
        except PromotionRequestError as exc:
            problems.append(str(exc))
        if backend == "local":
            if params["device"] == "cuda" and not _has_nvidia_gpu():
                problems.append("device 'cuda' needs an NVIDIA GPU, and this machine shows none "
                                "(nvidia-smi): the local backend runs Spark here; use device 'cpu', "
                                "or the Kubernetes backend's GPU profile")
            if (params["trainer"] == "torch" and params["distributor"] == "horovod"
                    and importlib.util.find_spec("horovod") is None):
                problems.append("distributor 'horovod' needs Horovod, which is not installed here: run "
                                "`make horovod` (docs/HOROVOD.md), or use distributor 'torch'")
    return problems


def _has_nvidia_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def environment_problems(*, train: bool, backend: str, namespace: str) -> tuple[list[str], list[str]]:
    """What the run needs and cannot reach or write; and what was reached."""
    from sparkapp.backends import get_client

    problems, checked = [], []
    root = layout.DataLayout.from_env().root
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".preflight-{secrets.token_hex(6)}"
        probe.write_bytes(b"")
        probe.unlink()
        checked.append(f"data root {layout.uri(root)} is writable")
    except OSError as exc:
        problems.append(f"the data root {layout.uri(root)} is not writable: {exc}")
    try:
        checked.append(get_client(backend).check_access(namespace))
    except Exception as exc:  # a missing connection, a refused or unreachable API server
        problems.append(f"the {backend} Spark backend is not reachable: {exc}")
    if train:
        uri = settings.mlflow_tracking_uri()
        try:
            _mlflow_answers(uri)
            checked.append(f"MLflow tracking at {uri}")
        except Exception as exc:
            problems.append(f"the MLflow tracking server at {uri} does not answer: "
                            f"{type(exc).__name__}: {exc}")
    return problems, checked


#: Seconds the preflight waits for an MLflow server's ``/health`` before it reports the server down.
MLFLOW_PROBE_TIMEOUT_S = 10


def _mlflow_answers(uri: str) -> None:
    from mlflow import MlflowClient

    if uri.startswith(("http://", "https://")):
        # One bounded request first: MLflow's client retries a refused connection 7 times with
        # backoff (about four minutes) before it raises. Any HTTP answer, an error status included,
        # means the server is up; the search below then checks the rest (credentials, the store).
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=MLFLOW_PROBE_TIMEOUT_S).close()
        except urllib.error.HTTPError:
            pass
    elif uri.startswith("sqlite:///"):  # the embedded store: its folder must exist for the file
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


def check_run(day: date, params: Mapping, *, backfill: bool, backend: str, namespace: str) -> RunPlan:
    """Check the run of ``day`` with ``params``; return its plan, or raise with every problem found."""
    train = runs_training(backfill=backfill, backfill_training=params["backfill_training"])
    bad_request = request_problems(day, params, train=train, backend=backend)
    unreachable, checked = environment_problems(train=train, backend=backend, namespace=namespace)
    if problems := bad_request + unreachable:
        message = f"the run of {day} cannot work; {len(problems)} problem(s):\n" + "\n".join(
            f"- {p}" for p in problems)
        raise (BadRunRequest if bad_request else PreflightError)(message)
    plan = RunPlan(day=day.isoformat(), source_day=source_day(day).isoformat(), train=train,
                   checked=checked)
    log.info("Preflight passed for %s (%s): %s", day, "trains" if train else "no training (backfill)",
             "; ".join(checked))
    return plan
