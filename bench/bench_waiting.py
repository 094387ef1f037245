"""Benchmark: waiting on SparkApplications, deferrable (triggerer) vs. poke mode (worker slot).

Run: ``.venv/bin/python bench/bench_waiting.py [--apps N] [--seconds S] [--interval P]``
(defaults 10 applications, 20 s of RUNNING per mode, 1 s poll interval; about 1 minute).

A fake Kubernetes API server (``testing.kubernetes_api.FakeKubernetesApi``, real HTTP on
127.0.0.1) is driven by the real ``kubernetes`` / ``kubernetes_asyncio`` clients through the
project's hooks. N SparkApplications are created per mode with ``SparkApplicationHook`` and kept
RUNNING (``api.set_status``), then:

1. Deferrable mode: ``SparkApplicationSensor(deferrable=True).execute(context)`` must raise
   ``TaskDeferred`` at once, with no API request; the N triggers rebuilt from the deferred
   trigger's serialized kwargs run concurrently in one asyncio event loop (as a triggerer runs
   them) for S seconds; then every application turns COMPLETED at t0, and per application the
   delay until its trigger yields its event is measured, plus ``sensor.execute_complete``.
2. Poke mode: N sensors (``deferrable=False, mode="poke"``), each ``sensor.execute(context)`` in
   its own thread as a worker slot runs it (``BaseSensorOperator.execute``: ``poke`` then
   ``time.sleep(P)``), for S seconds; then COMPLETED at t0 and the delay until ``execute`` returns.

In both modes the waiters start spread evenly over one poll interval (tasks do not start in
lock-step), so t0 falls at every point of their poll cycles. The fake server's listen backlog is
raised from socketserver's 5 to 128 (a real API server's is the OS's): each trigger read opens a new
connection, and more than 5 at once would otherwise be dropped and retried by TCP a second later.

API reads per application per minute are ``60 * (reads - 1) / (last read - first read)`` over the
RUNNING window, from the fake server's request log (timestamped here). Targets: 0 requests before
deferring, 0 worker slots held while deferred, at most one read per poll interval (<= 60/P a
minute), COMPLETED -> task success <= P + 2 s. Exit status: 1 if something failed (an exception,
no deferral, a missing or wrong event), 2 if a target was not met, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]
SANDBOX = Path(tempfile.mkdtemp(prefix="bench-waiting-"))
CONN_ID = "kubernetes_bench"
NAMESPACE = "ml-bench"

from devtools.environment import embedded_default, with_embedded_default  # noqa: E402

# Before anything imports Airflow: the embedded default under a sandbox, as tests/conftest.py does.
os.environ.update({
    **embedded_default(SANDBOX, python=sys.executable),
    "PYTHONPATH": with_embedded_default(os.environ)["PYTHONPATH"],
    # The provider's API retries wait 1-15 s by default; the fake API server needs no pause.
    "AIRFLOW__WORKERS__API_RETRY_WAIT_MIN": "0",
    "AIRFLOW__WORKERS__API_RETRY_WAIT_MAX": "0.05",
    # The sensors and triggers log every state change and the driver log tail, and Airflow warns that
    # execute() runs outside the Task Runner: keep the table readable.
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
})

from airflow.sdk.exceptions import TaskDeferred  # noqa: E402

from sparkapp.application import PodResources, SparkJob, render_manifest  # noqa: E402
from sparkapp.hooks.kubernetes import SparkApplicationHook  # noqa: E402
from sparkapp.sensors.spark_application import SparkApplicationSensor  # noqa: E402
from testing.kubernetes_api import FakeKubernetesApi  # noqa: E402

JOB = SparkJob(name="features", main_application_file="spark_jobs/features.py", image="spark-jobs:1",
               driver=PodResources(cores=1, memory="1g"), executor=PodResources(cores=1, memory="2g"))
POKE_HOW = ("BaseSensorOperator.execute(context), one thread per sensor, "
            "context = {'ti': <object with xcom_push>}")


class Failure(Exception):
    """Something the benchmark needs did not happen."""


class TaskInstance:
    """The part of ``ti`` the sensor uses: XCom pushes, recorded."""

    def __init__(self) -> None:
        self.pushed: list[tuple[str, object]] = []

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed.append((key, value))


class TimedRequests(list):
    """The fake server's request log; ``timed`` also holds each request's monotonic time."""

    def __init__(self) -> None:
        super().__init__()
        self.timed: list[tuple[float, tuple[str, str]]] = []

    def append(self, item) -> None:
        self.timed.append((time.monotonic(), item))  # one append: atomic across server threads
        super().append(item)


# -- the fake cluster ------------------------------------------------------------------------------
def start_api() -> FakeKubernetesApi:
    api = FakeKubernetesApi()
    api.requests = TimedRequests()
    # socketserver listens with a backlog of 5: connections of more than 5 triggers reading at once
    # would be dropped and retried by TCP a second later. A real API server's backlog is the OS's.
    api._server.socket.listen(128)
    api.start()
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({
        "conn_type": "kubernetes",
        "extra": {"kube_config": api.kube_config(NAMESPACE), "namespace": NAMESPACE},
    })
    return api


def set_state(api: FakeKubernetesApi, name: str, state: str) -> None:
    """What the Spark Operator would record: state, driver info, driver pod and its log."""
    status = {"applicationState": {"state": state}, "submissionAttempts": 1,
              "driverInfo": {"podName": f"{name}-driver", "webUIAddress": "10.0.0.7:4040",
                             "webUIServiceName": f"{name}-ui-svc", "webUIPort": 4040}}
    pod = (NAMESPACE, f"{name}-driver")
    phase = "Running" if state == "RUNNING" else "Succeeded"
    with api._lock:
        api.pods[pod] = {"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": pod[1], "namespace": NAMESPACE},
                         "status": {"phase": phase, "conditions": []}}
        api.logs.setdefault(pod, []).append(f"{name}: {state.lower()}")
        if state == "COMPLETED":
            status["terminationTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        api.set_status(NAMESPACE, name, status)


def create_running(api: FakeKubernetesApi, prefix: str, count: int) -> list[str]:
    hook = SparkApplicationHook(kubernetes_conn_id=CONN_ID)
    names = [f"bench-{prefix}-{i:03d}" for i in range(count)]
    for name in names:
        hook.create_application(render_manifest(JOB, name=name, namespace=NAMESPACE,
                                                arguments=["--day", "2013-06-30"]))
        set_state(api, name, "RUNNING")
    return names


def reads_in(api: FakeKubernetesApi, name: str, start: float, end: float) -> list[float]:
    path = f"/apis/sparkoperator.k8s.io/v1beta2/namespaces/{NAMESPACE}/sparkapplications/{name}"
    return [t for t, (method, p) in list(api.requests.timed)
            if method == "GET" and p == path and start <= t <= end]


def read_rates(api: FakeKubernetesApi, names: list[str], start: float, end: float) -> dict:
    counts, rates, gaps = [], [], []
    for name in names:
        times = reads_in(api, name, start, end)
        counts.append(len(times))
        if len(times) < 2:
            raise Failure(f"{name}: {len(times)} read(s) in the {end - start:.1f} s RUNNING window")
        rates.append(60 * (len(times) - 1) / (times[-1] - times[0]))
        gaps.extend(b - a for a, b in itertools.pairwise(times))
    return {"counts": counts, "rates": rates, "min_gap": min(gaps)}


def phase(index: int, count: int, interval: float) -> float:
    """Start offset of waiter ``index``: starts spread evenly over one poll interval, as tasks that
    do not start in lock-step, so COMPLETED lands at every point of their poll cycles."""
    return index * interval / count


def sensor(name: str, interval: float, deferrable: bool) -> SparkApplicationSensor:
    extra = {} if deferrable else {"mode": "poke", "timeout": 24 * 60 * 60}
    return SparkApplicationSensor(task_id=f"wait_{name.replace('-', '_')}", application_name=name,
                                  backend="kubernetes", kubernetes_conn_id=CONN_ID,
                                  deferrable=deferrable, poke_interval=interval, **extra)


# -- 1. deferrable mode ----------------------------------------------------------------------------
def deferrable_mode(api: FakeKubernetesApi, names: list[str], interval: float, seconds: float) -> dict:
    sensors = {name: sensor(name, interval, deferrable=True) for name in names}
    contexts = {name: {"ti": TaskInstance()} for name in names}
    triggers, defer_times = {}, []
    requests_before = len(api.requests)
    for name, task in sensors.items():
        started = time.perf_counter()
        try:
            task.execute(contexts[name])
        except TaskDeferred as deferred:
            defer_times.append(time.perf_counter() - started)
            if deferred.method_name != "execute_complete":
                raise Failure(f"{name}: deferred to {deferred.method_name!r}") from None
            classpath, kwargs = deferred.trigger.serialize()  # what the triggerer stores and rebuilds
            module, _, cls = classpath.rpartition(".")
            triggers[name] = getattr(importlib.import_module(module), cls)(**kwargs)
        else:
            raise Failure(f"{name}: execute() returned instead of deferring")
    # A worker slot is held while waiting only by a sensor that did not defer at once.
    slots_held = len(names) - len(triggers)
    requests_to_defer = len(api.requests) - requests_before

    events: dict[str, tuple[float, dict]] = {}

    async def consume(name: str, trigger, offset: float) -> None:
        await asyncio.sleep(offset)
        generator = trigger.run()
        try:
            event = await generator.__anext__()
            events[name] = (time.monotonic(), event.payload)
        finally:
            await generator.aclose()

    lags: list[float] = []

    async def heartbeat(until: float) -> None:
        """How late a 10 ms sleep wakes up: how long the triggers block the shared event loop."""
        while time.monotonic() < until:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - started - 0.01)

    async def triggerer() -> tuple[float, float, float]:
        tasks = [asyncio.create_task(consume(name, trigger, phase(i, len(triggers), interval)))
                 for i, (name, trigger) in enumerate(triggers.items())]
        window_start = time.monotonic()
        await asyncio.gather(asyncio.sleep(seconds), heartbeat(window_start + seconds))
        window_end = time.monotonic()
        early = {name: payload for name, (_, payload) in events.items()}
        if early:
            raise Failure(f"triggers fired while the applications were RUNNING: {early}")
        t0 = time.monotonic()
        for name in names:
            set_state(api, name, "COMPLETED")
        done, pending = await asyncio.wait(tasks, timeout=interval + 30)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()  # re-raise a trigger's exception
        return window_start, window_end, t0

    window_start, window_end, t0 = asyncio.run(triggerer())
    missing = sorted(set(names) - set(events))
    if missing:
        raise Failure(f"no trigger event within {interval + 30:.0f} s of COMPLETED for {missing}")
    rates = read_rates(api, names, window_start, window_end)
    event_delays, complete_times, total_delays = [], [], []
    for name in names:
        event_time, payload = events[name]
        if payload != {"verdict": "terminal", "state": "COMPLETED"}:
            raise Failure(f"{name}: unexpected trigger event {payload}")
        started = time.perf_counter()
        sensors[name].execute_complete(contexts[name], payload)  # raises if not COMPLETED
        took = time.perf_counter() - started
        event_delays.append(event_time - t0)
        complete_times.append(took)
        total_delays.append(event_time - t0 + took)
    return {"slots": slots_held, "defer_times": defer_times, "requests_to_defer": requests_to_defer,
            **rates, "max_lag": max(lags), "event_delays": event_delays, "complete_times": complete_times,
            "total_delays": total_delays}


# -- 2. poke mode ----------------------------------------------------------------------------------
def poke_mode(api: FakeKubernetesApi, names: list[str], interval: float, seconds: float) -> dict:
    returned: dict[str, float] = {}
    errors: dict[str, BaseException] = {}

    def worker_slot(name: str, offset: float) -> None:
        time.sleep(offset)
        try:
            sensor(name, interval, deferrable=False).execute({"ti": TaskInstance()})
            returned[name] = time.monotonic()
        except BaseException as exc:  # reported below
            errors[name] = exc

    threads = [threading.Thread(target=worker_slot, args=(name, phase(i, len(names), interval)), daemon=True)
               for i, name in enumerate(names)]
    window_start = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    window_end = time.monotonic()
    slots_held = sum(thread.is_alive() for thread in threads)
    if returned or errors:
        raise Failure(f"sensors ended while the applications were RUNNING: {sorted(returned)} {errors}")
    t0 = time.monotonic()
    for name in names:
        set_state(api, name, "COMPLETED")
    deadline = t0 + interval + 30
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    if errors:
        raise Failure(f"poke sensors failed: {errors}")
    missing = sorted(set(names) - set(returned))
    if missing:
        raise Failure(f"execute() did not return within {interval + 30:.0f} s of COMPLETED for {missing}")
    rates = read_rates(api, names, window_start, window_end)
    return {"slots": slots_held, **rates, "total_delays": [returned[name] - t0 for name in names]}


# -- report ----------------------------------------------------------------------------------------
def med_max(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    return f"{statistics.median(values) * scale:.{digits}f} / {max(values) * scale:.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(args, command: str, deferred: dict, poked: dict) -> bool:
    n, p, s = args.apps, args.interval, args.seconds
    max_rate, max_delay = 60 / p, p + 2
    checks = {
        "slots": deferred["slots"] == 0,
        "requests": deferred["requests_to_defer"] == 0,
        "rate_d": max(deferred["rates"]) <= max_rate, "rate_p": max(poked["rates"]) <= max_rate,
        "delay_d": max(deferred["total_delays"]) <= max_delay,
        "delay_p": max(poked["total_delays"]) <= max_delay,
    }
    rows = [
        ("worker slots held while waiting", f"{deferred['slots']}", f"{poked['slots']}",
         "deferrable: 0", verdict(checks["slots"])),
        ("API requests before TaskDeferred", f"{deferred['requests_to_defer']}", "-", "0",
         verdict(checks["requests"])),
        ("execute() until TaskDeferred, med / max (ms)", med_max(deferred["defer_times"], 1000, 2), "-",
         "", ""),
        (f"GETs per app in the {s:.0f} s RUNNING window, med / max", med_max(deferred["counts"], 1, 0),
         med_max(poked["counts"], 1, 0), "", ""),
        ("reads per app per minute, med / max", med_max(deferred["rates"], 1, 1),
         med_max(poked["rates"], 1, 1), f"<= {max_rate:.1f} (60/P)",
         f"{verdict(checks['rate_d'])} / {verdict(checks['rate_p'])}"),
        ("shortest gap between 2 reads of one app (s)", f"{deferred['min_gap']:.3f}",
         f"{poked['min_gap']:.3f}", "", ""),
        ("event loop lag while RUNNING, max (ms)", f"{deferred['max_lag'] * 1000:.0f}", "-", "", ""),
        ("COMPLETED -> trigger event, med / max (s)", med_max(deferred["event_delays"]), "-", "", ""),
        ("execute_complete() (read + log), med / max (ms)", med_max(deferred["complete_times"], 1000, 1),
         "-", "", ""),
        ("COMPLETED -> task success, med / max (s)", med_max(deferred["total_delays"]),
         med_max(poked["total_delays"]), f"<= {max_delay:.1f} (P + 2 s)",
         f"{verdict(checks['delay_d'])} / {verdict(checks['delay_p'])}"),
    ]
    print(f"Waiting on SparkApplications: {n} apps, poll interval P = {p:g} s, "
          f"{s:g} s RUNNING per mode, {os.cpu_count()} CPUs")
    print("waiters start spread evenly over one poll interval; all applications turn COMPLETED at one t0")
    print(f"command: {command}")
    print("fake Kubernetes API server on 127.0.0.1 (real HTTP; real kubernetes / kubernetes_asyncio clients)")
    print(f"poke mode ran as: {POKE_HOW}")
    print()
    header = ("", "deferrable", "poke", "target", "verdict (d / p)")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  "
              f"{row[3]:<{widths[3]}}  {row[4]}".rstrip())
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10, help="applications per mode (default 10)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="seconds the applications stay RUNNING per mode (default 20)")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval P in seconds (default 1)")
    args = parser.parse_args()
    command = (f"{os.path.relpath(sys.executable, Path.cwd())} bench/bench_waiting.py --apps {args.apps} "
               f"--seconds {args.seconds:g} --interval {args.interval:g}")
    api = start_api()
    try:
        deferred = deferrable_mode(api, create_running(api, "defer", args.apps), args.interval, args.seconds)
        poked = poke_mode(api, create_running(api, "poke", args.apps), args.interval, args.seconds)
        met = report(args, command, deferred, poked)
    except Failure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        api.stop()
        shutil.rmtree(SANDBOX, ignore_errors=True)
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
