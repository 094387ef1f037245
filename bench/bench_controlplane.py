"""Benchmark: submitting and waiting on SparkApplications on a real control plane and Spark Operator.

Run: ``.venv/bin/python bench/bench_controlplane.py [--quick] [--sequential N] [--apps M] [--seconds S]``
(defaults 10 sequential applications, 50 waiting at once, 60 s read windows, 3 dag.test() runs:
11-13 minutes on 2 cores; ``--quick``: 3, 10, 20 s and 2 runs, about 4-5 minutes). Needs the
control plane's binaries (``make controlplane``).

It starts its own control plane (``testing.controlplane.harness.ControlPlane(kwok=True)``: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, KWOK), sets it up as the platform admin does
(``testing.controlplane.platform.Platform(plane).set_up()``: the Spark Operator v2.5.2 controller and
webhook, deploy/ applied, the ``airflow-worker`` token as the Airflow connection ``kubernetes_default``),
adds one KWOK node (64 CPUs, 256 GiB) and stops it all at the end (the harness checks that no process
is left). The project's operator, sensor and trigger act with the worker's token; watches (as admin,
in this process) record when each SparkApplication and driver pod changed. Driver pods run on KWOK
(no container): each stays Running until this script ends it with ``ControlPlane.finish_pod`` (exit
code 0, as a kubelet reports it), and the Spark Operator itself then records COMPLETED. (Not
``DriverExecutor``: its 5 Hz pod listing would share this process and the API server with what is
measured, and here every driver must end at a moment this script chooses.)

1. **create -> driver pod Running**, N applications one after the other (the project's feature job,
   renamed): from ``SparkApplicationOperator.execute`` to the driver pod's Running (pod watch), split
   at the application's ADDED, the driver pod's ADDED (spark-submit created it), its binding (the
   scheduler) and Running (KWOK); plus the CPU-seconds of the operator's spark-submit (the
   controller's reaped children) and the same span from server timestamps (1 s resolution).
2. **COMPLETED -> Airflow task success**, deferred: each sensor's ``execute`` raises ``TaskDeferred``
   and its trigger, rebuilt from ``serialize()`` as the triggerer does, runs in the triggerer
   process (below); then every driver pod is ended (4 at a time, in an order unrelated to the
   triggers' poll phases); per application, from its COMPLETED (application watch) to the trigger's
   event, then ``sensor.execute_complete`` (in this process, as a worker resumes the task: it copies
   the driver log over ``pods/log``). At a small poll interval (``--interval``, 1 s) on the N
   applications of 1., and at the DAG's ``poke_interval`` (10 s, dags/flight_delay_retraining.py) on
   the M applications of 3.
3. **API reads per waiting application per minute**: M applications created (at most
   ``--submit-at-once`` in submission at a time) and kept RUNNING, M triggers running concurrently in
   ONE asyncio event loop in a separate process (the "triggerer"; it starts them spread evenly over
   one poll interval), for S seconds, at the small interval and at the DAG's: GETs on
   ``sparkapplications`` counted by the kube-apiserver itself
   (``apiserver_request_total{resource="sparkapplications",verb="GET"}`` of ``/metrics``, read as admin
   before and after, less the background rate measured over a quiet window first), the event loop's
   lag (how late a 10 ms ``asyncio.sleep`` wakes; and the triggerer's own watchdog, a 0.1 s sleep
   that warns when it took over ``[triggerer] blocked_main_thread_warning_threshold``, 0.2 s), the
   garbage collector's pauses, and the CPU of that process, of the kube-apiserver, of etcd and of
   the whole machine over the window. The one-time import of the Kubernetes hook, which a
   triggerer's first trigger of this class does inside its event loop, is timed apart, before.
4. **Through Airflow**, optional (``--dag-test``): a tiny DAG (submit, then the deferrable sensor at
   the small interval) run by ``dag.test()``, which runs the trigger in-process and then the sensor
   again as a new task run; COMPLETED (watch) -> the wait task's ``end_date``.

Exit status: 1 if something failed (an application FAILED or not Running in time, a missing or wrong
trigger event, a dag.test() run that did not succeed, a control-plane process left behind), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import multiprocessing
import os
import random
import re
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]
# The triggerer process (multiprocessing "spawn") imports this module again: one sandbox for both.
if "BENCH_CONTROLPLANE_SANDBOX" not in os.environ:
    os.environ["BENCH_CONTROLPLANE_SANDBOX"] = tempfile.mkdtemp(prefix="bench-controlplane-")
SANDBOX = Path(os.environ["BENCH_CONTROLPLANE_SANDBOX"])

from devtools.environment import embedded_default, with_embedded_default  # noqa: E402

# Before anything imports Airflow: the embedded default under a sandbox, as tests/conftest.py does.
os.environ.update({
    **embedded_default(SANDBOX, python=sys.executable),
    "PYTHONPATH": with_embedded_default(os.environ)["PYTHONPATH"],
    # The sensors and triggers log every state change and the driver log tail, and Airflow warns that
    # execute() runs outside the Task Runner: keep the table readable.
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    "SPARKAPP_BACKEND": "kubernetes",
    # dag.test() (phase 4) syncs its DAG from the DAG bundle: the bench's tiny DAG alone
    "AIRFLOW__CORE__DAGS_FOLDER": str(SANDBOX / "dags"),
})

import psutil  # noqa: E402
from airflow.sdk.exceptions import TaskDeferred  # noqa: E402

from flight_delays.jobs import FEATURES_JOB  # noqa: E402
from sparkapp import states  # noqa: E402
from sparkapp.operators.spark_application import SparkApplicationOperator  # noqa: E402
from sparkapp.sensors.spark_application import SparkApplicationSensor  # noqa: E402

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
DAG_ID = "bench_controlplane"
START = datetime(2013, 6, 30, tzinfo=timezone.utc)
RUN_ID = "manual__2013-06-30T00:00:00+00:00"
#: The wait tasks' poke_interval in dags/flight_delay_retraining.py (spark_stage).
DAG_POKE_INTERVAL = 10.0
#: The triggerer's default [triggerer] blocked_main_thread_warning_threshold (Airflow 3.2+), and the
#: sleep of its watchdog loop (TriggerRunner.block_watchdog).
BLOCKED_WARNING_THRESHOLD, WATCHDOG_SLEEP = 0.2, 0.1
NODE = "kwok-cpu-0"
#: The project's feature job, renamed: its image, security contexts, volumes and resources. The M
#: applications that wait together request half a CPU each, so that 50 fit the test overlay's quota
#: (requests.cpu 32); their limit stays 1 CPU.
SEQUENTIAL_JOB = replace(FEATURES_JOB, name="seq")
WAITING_JOB = replace(FEATURES_JOB, name="wait",
                      driver=replace(FEATURES_JOB.driver, core_request="500m", core_limit="1"))


class Failure(Exception):
    """Something the benchmark needs did not happen."""


class TaskInstance:
    """The part of ``ti`` the operator and the sensor use."""

    def __init__(self, task_id: str, map_index: int = -1) -> None:
        self.dag_id, self.task_id, self.map_index = DAG_ID, task_id, map_index
        self.pushed: list[tuple[str, object]] = []

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed.append((key, value))


def sensor(name: str, interval: float) -> SparkApplicationSensor:
    """The DAG's wait task for ``name`` (deferrable by default), at poke_interval ``interval``."""
    return SparkApplicationSensor(task_id=f"wait_{name.replace('-', '_')}", application_name=name,
                                  backend="kubernetes", poke_interval=interval, timeout=3600)


# -- what happened on the cluster, from watches ----------------------------------------------------
@dataclass
class Watches:
    """When each SparkApplication and driver pod of the namespace changed, from watches as admin.

    Times are this machine's ``time.time()`` when the event arrived (the API server is on the same
    machine: a watch event arrives milliseconds after the write). Only the first time of each
    milestone is kept: a watch started again lists everything once more.
    """

    plane: object
    namespace: str
    apps: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {"ADDED" | state: t}
    pods: dict[str, dict[str, float]] = field(default_factory=dict)  # pod -> {"ADDED", "bound", phase: t}
    app_objects: dict[str, dict] = field(default_factory=dict)
    pod_objects: dict[str, object] = field(default_factory=dict)
    failure_messages: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def start(self) -> Watches:
        self._stop = threading.Event()
        self._ready = {kind: threading.Event() for kind in ("app", "pod")}
        self._threads = [threading.Thread(target=self._watch, args=(kind,), daemon=True, name=f"watch-{kind}")
                         for kind in ("app", "pod")]
        for thread in self._threads:
            thread.start()
        for ready in self._ready.values():
            if not ready.wait(30):
                raise Failure(f"the watches did not start: {self.errors}")
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _note(self, table: dict, key: str, milestone: str, when: float) -> None:
        table.setdefault(key, {}).setdefault(milestone, when)

    def _watch(self, kind: str) -> None:
        from kubernetes import client, watch
        with self.plane.api_client() as api:
            custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            version = None
            while not self._stop.is_set():
                try:
                    if kind == "pod":
                        lister, args = core.list_namespaced_pod, (self.namespace,)
                        listed = core.list_namespaced_pod(self.namespace, label_selector="spark-role=driver")
                        version = version or listed.metadata.resource_version
                    else:
                        lister, args = custom.list_namespaced_custom_object, (GROUP, VERSION, self.namespace,
                                                                               PLURAL)
                        listed = custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
                        version = version or listed["metadata"]["resourceVersion"]
                    self._ready[kind].set()
                    stream = watch.Watch()
                    extra = {"label_selector": "spark-role=driver"} if kind == "pod" else {}
                    for event in stream.stream(lister, *args, resource_version=version, timeout_seconds=5,
                                               allow_watch_bookmarks=True, **extra):
                        when = time.time()
                        if event["type"] == "BOOKMARK":
                            raw = event["raw_object"]["metadata"]["resourceVersion"]
                            version = raw
                            continue
                        obj = event["object"]
                        if kind == "pod":
                            name, version = obj.metadata.name, obj.metadata.resource_version
                            self._note(self.pods, name, "ADDED", when)
                            if obj.spec.node_name:
                                self._note(self.pods, name, "bound", when)
                            if obj.status.phase:
                                self._note(self.pods, name, obj.status.phase, when)
                            self.pod_objects[name] = obj
                        else:
                            name, version = obj["metadata"]["name"], obj["metadata"]["resourceVersion"]
                            self._note(self.apps, name, "ADDED", when)
                            self._note(self.apps, name, states.application_state(obj) or "new", when)
                            self.app_objects[name] = obj
                            message = obj.get("status", {}).get("applicationState", {}).get("errorMessage")
                            if message:
                                self.failure_messages[name] = message
                        if self._stop.is_set():
                            stream.stop()
                except Exception as exc:  # an expired resourceVersion or a dropped watch: list again
                    self.errors.append(f"{kind} watch: {type(exc).__name__}: {exc}"[:300])
                    version = None
                    time.sleep(0.2)

    def wait_running(self, names: list[str], timeout: float, progress: bool = False) -> None:
        """Until every application is RUNNING and its driver pod Running; raise on a FAILED one (a
        SUBMISSION_FAILED one is waited through: the operator submits it again, as its restart policy
        says, after onSubmissionFailureRetryInterval)."""
        deadline, last_report = time.monotonic() + timeout, time.monotonic()
        while True:
            failed = {n: self.app_objects[n].get("status", {}) for n in names
                      if "FAILED" in self.apps.get(n, {})}
            if failed:
                raise Failure(f"applications FAILED before running: {json.dumps(failed)[-3000:]}")
            waiting = [n for n in names if "RUNNING" not in self.apps.get(n, {})
                       or "Running" not in self.pods.get(driver_pod(n), {})]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise Failure(f"{len(waiting)} of {len(names)} applications not RUNNING with a Running "
                              f"driver after {timeout:.0f} s, e.g. {waiting[0]}: {self.apps.get(waiting[0])}")
            if progress and time.monotonic() - last_report > 30:
                print(f"  ... {len(names) - len(waiting)} of {len(names)} running", file=sys.stderr,
                      flush=True)
                last_report = time.monotonic()
            time.sleep(0.1)

    def submission_failures(self, names: list[str]) -> dict[str, str]:
        """The applications of ``names`` that were SUBMISSION_FAILED at some point: the end of the
        operator's last errorMessage (spark-submit's output) seen for each."""
        return {n: self.failure_messages.get(n, "")[-400:] for n in names
                if "SUBMISSION_FAILED" in self.apps.get(n, {})}

    def wait_state(self, names: list[str], state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (missing := [n for n in names if state not in self.apps.get(n, {})]):
            if time.monotonic() > deadline:
                raise Failure(f"{len(missing)} applications not {state} after {timeout:.0f} s, e.g. "
                              f"{missing[0]}: {self.apps.get(missing[0])}")
            time.sleep(0.05)


def driver_pod(name: str) -> str:
    return f"{name}-driver"


def server_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# -- the kube-apiserver's own counts ---------------------------------------------------------------
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def apiserver_metrics(plane) -> str:
    """``/metrics`` of the kube-apiserver, read as admin (client certificate in system:masters)."""
    context = ssl.create_default_context(cafile=str(plane.ca))
    context.load_cert_chain(str(plane.workdir / "admin.crt"), str(plane.workdir / "admin.key"))
    with urllib.request.urlopen(f"{plane.server}/metrics", context=context, timeout=30) as response:
        return response.read().decode()


def metric_sum(text: str, metric: str, **labels: str) -> float:
    """The sum of ``metric``'s samples whose labels include ``labels`` (a missing label reads as "")."""
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match[1] == metric:
            have = dict(_LABEL.findall(match[2]))
            if all(have.get(k, "") == v for k, v in labels.items()):
                total += float(match[3])
    return total


GET_APPS = {"resource": "sparkapplications", "verb": "GET", "subresource": ""}


@dataclass
class ApiCounts:
    gets: float
    gets_ok: float
    get_seconds: float  # the server's own time spent on those GETs (request duration histogram)

    @classmethod
    def read(cls, plane) -> ApiCounts:
        text = apiserver_metrics(plane)
        return cls(metric_sum(text, "apiserver_request_total", **GET_APPS),
                   metric_sum(text, "apiserver_request_total", code="200", **GET_APPS),
                   metric_sum(text, "apiserver_request_duration_seconds_sum", **GET_APPS))

    def __sub__(self, other: ApiCounts) -> ApiCounts:
        return ApiCounts(self.gets - other.gets, self.gets_ok - other.gets_ok,
                         self.get_seconds - other.get_seconds)


# -- CPU -------------------------------------------------------------------------------------------
def process_named(plane, name: str) -> psutil.Process:
    (process,) = [p for p in plane.processes if p.name == name]
    return psutil.Process(process.popen.pid)


def spark_submit_cpu(controller: psutil.Process) -> float:
    """CPU-seconds of the Spark Operator controller's reaped children: its spark-submit runs."""
    times = controller.cpu_times()
    return times.children_user + times.children_system


class CpuWindow:
    """CPU-seconds of some processes and of the whole machine between ``__init__`` and ``stop``."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = processes
        self.started = time.monotonic()
        self.load = os.getloadavg()[0]
        self._machine = psutil.cpu_times()
        self._own = {k: self._cpu(p) for k, p in processes.items()}

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def stop(self) -> dict:
        seconds = time.monotonic() - self.started
        machine = psutil.cpu_times()
        busy = sum(getattr(machine, f) - getattr(self._machine, f) for f in ("user", "nice", "system", "irq",
                                                                              "softirq", "steal"))
        used = {k: (self._cpu(p) - self._own[k]) / seconds for k, p in self.processes.items()}
        return {"seconds": seconds, "machine_cpus": busy / seconds, "load_start": self.load,
                "load_end": os.getloadavg()[0], **used}


# -- the triggerer process -------------------------------------------------------------------------
def triggerer(conn, names: list[str], interval: float, seconds: float) -> None:
    """Runs in its own process, as a triggerer: defer every sensor, then run the triggers rebuilt from
    their serialized form concurrently in one event loop.

    Protocol with the parent: sends ``("ready", {...})`` and waits for ``"go"``; starts the triggers
    spread evenly over one poll interval and measures the loop's lag and this process's CPU for
    ``seconds``, then sends ``("window", {...})``; on ``"complete"`` waits for every trigger's event,
    on ``"stop"`` cancels them; finally sends ``("events", {name: (time, payload)})``.
    """
    try:
        triggers, defer_seconds = {}, []
        for name in names:
            task, started = sensor(name, interval), time.perf_counter()
            try:
                task.execute({"ti": TaskInstance(task.task_id)})
            except TaskDeferred as deferred:
                defer_seconds.append(time.perf_counter() - started)
                if deferred.method_name != "execute_complete":
                    raise Failure(f"{name}: deferred to {deferred.method_name!r}") from None
                classpath, kwargs = deferred.trigger.serialize()  # what the triggerer stores and rebuilds
                module, _, cls = classpath.rpartition(".")
                triggers[name] = getattr(importlib.import_module(module), cls)(**kwargs)
            else:
                raise Failure(f"{name}: execute() returned instead of deferring")
        # The first trigger's run() of a process imports the Kubernetes hook (the provider, kubernetes,
        # kubernetes_asyncio) inside the event loop: a one-time block, timed here, not in the window.
        started = time.perf_counter()
        importlib.import_module("sparkapp.hooks.kubernetes")
        import_seconds = time.perf_counter() - started
        conn.send(("ready", {"defer_seconds": defer_seconds, "import_seconds": import_seconds}))
        if conn.recv() != "go":
            return
        conn.send(("events", asyncio.run(_run_triggers(conn, triggers, interval, seconds))))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _run_triggers(conn, triggers: dict, interval: float, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    events: dict[str, tuple[float, dict]] = {}
    errors: dict[str, str] = {}

    async def consume(name: str, trigger, offset: float) -> None:
        await asyncio.sleep(offset)
        generator = trigger.run()
        try:
            event = await generator.__anext__()
            events[name] = (time.time(), event.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
        finally:
            await generator.aclose()

    # (seconds into the window, lag); the steady part starts once every trigger has started (they
    # start spread over one interval, each building its API client then) and made its first read
    lags: list[tuple[float, float]] = []
    blocked: list[tuple[float, float]] = []
    count = len(triggers)
    steady_at = interval + 1.0
    cpu_start, window_start = time.process_time(), time.monotonic()
    cpu_steady: list[float] = []
    # the garbage collector's pauses: (seconds into the window, generation, seconds); a full collection
    # walks every object of the process, Airflow's imports included, and blocks the loop meanwhile
    collections: list[tuple[float, int, float]] = []
    collecting = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            collecting[0] = time.perf_counter()
        else:
            collections.append((time.monotonic() - window_start, info["generation"],
                                time.perf_counter() - collecting[0]))

    gc.callbacks.append(on_gc)

    async def heartbeat(until: float) -> None:
        """How late a 10 ms sleep wakes up: how long the triggers block the shared event loop."""
        while time.monotonic() < until:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append((started - window_start, time.monotonic() - started - 0.01))
            if not cpu_steady and started - window_start >= steady_at:
                cpu_steady.append(time.process_time())

    async def watchdog(until: float) -> None:
        """The triggerer's block_watchdog: a 0.1 s sleep that took over the threshold is a warning."""
        while time.monotonic() < until:
            started = time.monotonic()
            await asyncio.sleep(WATCHDOG_SLEEP)
            if (elapsed := time.monotonic() - started) > BLOCKED_WARNING_THRESHOLD:
                blocked.append((started - window_start, elapsed))

    tasks = [asyncio.create_task(consume(name, trigger, i * interval / count))
             for i, (name, trigger) in enumerate(triggers.items())]
    until = window_start + seconds
    await asyncio.gather(heartbeat(until), watchdog(until))
    window = time.monotonic() - window_start
    cpu_end = time.process_time()
    gc.callbacks.remove(on_gc)
    early = {name: payload.get("verdict") for name, (_, payload) in events.items()}
    steady_cpu = (cpu_end - cpu_steady[0]) / (window - steady_at) if cpu_steady else None
    conn.send(("window", {"seconds": window, "cpu": (cpu_end - cpu_start) / window, "steady_at": steady_at,
                          "steady_cpu": steady_cpu, "lags": lags, "blocked": blocked, "early": early,
                          "collections": collections,
                          "errors": dict(errors)}))
    command = await loop.run_in_executor(None, conn.recv)
    if command == "complete":
        _, pending = await asyncio.wait(tasks, timeout=interval + 120)
    else:
        pending = set(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {"events": events, "errors": errors}


class Triggerer:
    """The parent's side of :func:`triggerer`."""

    def __init__(self, names: list[str], interval: float, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=triggerer, args=(child, names, interval, seconds),
                                       name="triggerer", daemon=True)
        self.process.start()
        self.ready = self._expect("ready", timeout=300)

    def _expect(self, kind: str, timeout: float):
        if not self.conn.poll(timeout):
            raise Failure(f"the triggerer process sent no {kind!r} within {timeout:.0f} s")
        got, payload = self.conn.recv()
        if got == "error":
            raise Failure(f"the triggerer process failed: {payload}")
        if got != kind:
            raise Failure(f"the triggerer process sent {got!r}, expected {kind!r}")
        return payload

    def go(self) -> None:
        self.conn.send("go")

    def window(self, timeout: float) -> dict:
        return self._expect("window", timeout)

    def finish(self, command: str, timeout: float) -> dict:
        self.conn.send(command)
        try:
            return self._expect("events", timeout)
        finally:
            self.process.join(30)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(10)


# -- the phases ------------------------------------------------------------------------------------
def submit(job, map_index: int) -> str:
    ti = TaskInstance(f"submit_{job.name}", map_index)
    operator = SparkApplicationOperator(task_id=ti.task_id, job=job, backend="kubernetes",
                                        arguments=["--day", "2013-06-30"])
    return operator.execute({"ti": ti, "data_interval_start": START, "run_id": RUN_ID})


def create_sequentially(plane, watches: Watches, count: int) -> list[dict]:
    """Phase 1: one application at a time, each until its driver pod is Running."""
    controller = process_named(plane, "spark-operator-controller")
    rows = []
    for i in range(count):
        cpu_before = spark_submit_cpu(controller)
        started = time.time()
        name = submit(SEQUENTIAL_JOB, i)
        answered = time.time()
        watches.wait_running([name], timeout=300)
        watches.wait_state([name], "SUBMITTED", timeout=30)
        time.sleep(0.5)  # spark-submit has exited (SUBMITTED): its CPU is in the controller's children
        app, pod = watches.apps[name], watches.pods[driver_pod(name)]
        pod_object = watches.pod_objects[driver_pod(name)]
        ready = {c.type: c.last_transition_time for c in pod_object.status.conditions or []}.get("Ready")
        created = watches.app_objects[name]["metadata"]["creationTimestamp"]
        rows.append({
            "name": name, "execute": answered - started, "added": app["ADDED"] - started,
            "spark_submit": pod["ADDED"] - app["ADDED"], "scheduled": pod["bound"] - pod["ADDED"],
            "kwok": pod["Running"] - pod["bound"], "total": pod["Running"] - started,
            "submitted": app["SUBMITTED"] - started, "app_running": app["RUNNING"] - started,
            "server_total": ready.timestamp() - server_time(created) if ready else None,
            "cpu": spark_submit_cpu(controller) - cpu_before,
            "submission_failure": watches.submission_failures([name]).get(name),
            "load": os.getloadavg()[0],
        })
        print(f"  {name}: driver Running {rows[-1]['total']:.2f} s after execute()", file=sys.stderr,
              flush=True)
    return rows


def bare_spark_submit(controller: psutil.Process, repeats: int = 3) -> dict:
    """``spark-submit --version`` as the operator's controller runs spark-submit (its SPARK_HOME and
    SPARK_SUBMIT_OPTS): the two JVM starts (Spark's launcher, then SparkSubmit) with no submission."""
    import resource
    import subprocess

    env = {**os.environ, **{k: v for k, v in controller.environ().items()
                            if k in ("SPARK_HOME", "SPARK_CONF_DIR", "SPARK_SUBMIT_OPTS", "PATH")}}
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        subprocess.run([str(Path(env["SPARK_HOME"]) / "bin" / "spark-submit"), "--version"], env=env,
                       capture_output=True, check=True, timeout=120)
        walls.append(time.monotonic() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "opts": env.get("SPARK_SUBMIT_OPTS", "")}


def create_burst(plane, watches: Watches, count: int, at_once: int) -> tuple[list[str], dict]:
    """M applications, created as fast as the operator takes them with at most ``at_once`` of them
    in submission (created, spark-submit not yet done); until every driver pod is Running."""
    controller = process_named(plane, "spark-operator-controller")
    cpu_before, started = spark_submit_cpu(controller), time.time()
    names: list[str] = []

    def in_submission() -> int:
        done = {"SUBMITTED", "SUBMISSION_FAILED", "RUNNING"}
        return sum(1 for n in names if not done & set(watches.apps.get(n, {})))

    while len(names) < count:
        if in_submission() < at_once:
            names.append(submit(WAITING_JOB, len(names)))
        else:
            time.sleep(0.05)
    watches.wait_running(names, timeout=max(900, 30 * count), progress=True)
    watches.wait_state(names, "SUBMITTED", timeout=30)
    time.sleep(1)
    all_running = max(watches.pods[driver_pod(n)]["Running"] for n in names) - started
    return names, {"all_running": all_running, "at_once": at_once,
                   "cpu": (spark_submit_cpu(controller) - cpu_before) / count,
                   "submission_failures": watches.submission_failures(names)}


def end_drivers(plane, namespace: str, names: list[str]) -> float:
    """End every driver pod (exit code 0, as a kubelet reports it), 4 at a time and in an order
    unrelated to the one the triggers started in (their poll phases), so that each COMPLETED falls
    at an unrelated point of its trigger's poll cycle; answer when it began."""
    order = list(names)
    random.Random(0).shuffle(order)
    t0 = time.time()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: plane.finish_pod(namespace, driver_pod(n), exit_code=0, wait=False), order))
    return t0


def wait_through_triggerer(plane, watches: Watches, namespace: str, names: list[str], interval: float,
                           seconds: float, *, complete: bool, apiserver: psutil.Process) -> dict:
    """Phases 2 and 3: the triggers of ``names`` for ``seconds``; then their drivers end (``complete``)
    and each application's COMPLETED -> trigger event -> execute_complete is measured."""
    process = Triggerer(names, interval, seconds)
    before = ApiCounts.read(plane)
    cpu = CpuWindow({"apiserver": apiserver, "etcd": process_named(plane, "etcd"),
                     "triggerer": psutil.Process(process.process.pid)})
    process.go()
    window = process.window(timeout=seconds + 120)
    reads = ApiCounts.read(plane) - before
    machine = cpu.stop()
    if window["early"] or window["errors"]:
        raise Failure(f"triggers fired while the applications were RUNNING: {window['early']} "
                      f"{window['errors']}")
    result = {"interval": interval, "apps": len(names), "defer_seconds": process.ready["defer_seconds"],
              "import_seconds": process.ready["import_seconds"],
              "window": window, "reads": reads, "cpu": machine}
    if not complete:
        process.finish("stop", timeout=60)
        return result
    t0 = end_drivers(plane, namespace, names)
    watches.wait_state(names, "COMPLETED", timeout=120)
    finished = process.finish("complete", timeout=interval + 180)
    events, errors = finished["events"], finished["errors"]
    missing = sorted(set(names) - set(events))
    if errors or missing:
        raise Failure(f"no trigger event for {missing}; trigger errors: {errors}")
    delays, completes, totals = [], [], []
    for name in names:
        when, payload = events[name]
        if (payload.get("verdict"), payload.get("state")) != ("terminal", "COMPLETED"):
            raise Failure(f"{name}: unexpected trigger event {payload.get('verdict')} {payload.get('state')}")
        completed = watches.apps[name]["COMPLETED"]
        task, ti = sensor(name, interval), TaskInstance(f"wait_{name}")
        started = time.perf_counter()
        task.execute_complete({"ti": ti}, payload)  # raises unless COMPLETED
        took = time.perf_counter() - started
        if "cost" not in [key for key, _ in ti.pushed]:
            raise Failure(f"{name}: execute_complete pushed no cost inputs: {ti.pushed}")
        delays.append(when - completed)
        completes.append(took)
        totals.append(when - completed + took)
    result.update({"pods_ended_over": max(watches.pods[driver_pod(n)]["Succeeded"] for n in names) - t0,
                   "operator": [watches.apps[n]["COMPLETED"] - watches.pods[driver_pod(n)]["Succeeded"]
                                for n in names],
                   "event_delays": delays, "execute_complete": completes, "task_success": totals})
    return result


DAG_TEST_FILE = """\
from dataclasses import replace
from datetime import datetime, timezone

from airflow.sdk import DAG

from flight_delays.jobs import FEATURES_JOB
from sparkapp.operators.spark_application import SparkApplicationOperator
from sparkapp.sensors.spark_application import SparkApplicationSensor

with DAG("{dag_id}", schedule=None, start_date=datetime(2013, 1, 1, tzinfo=timezone.utc), catchup=False,
         tags=["bench"]):
    submit = SparkApplicationOperator(task_id="submit", job=replace(FEATURES_JOB, name="dagtest"),
                                      backend="kubernetes", arguments=["--day", "{{{{ ds }}}}"])
    SparkApplicationSensor(task_id="wait", application_name=submit.output, backend="kubernetes",
                           poke_interval={interval}, timeout=900)
"""
#: Seconds a dag.test() run's driver pod runs before it ends.
DAG_TEST_DRIVER_SECONDS = 2.0


def dag_test_runs(plane, watches: Watches, namespace: str, count: int, interval: float) -> dict:
    """Phase 4: a tiny DAG (submit, then the deferrable sensor at ``interval``) run by dag.test(),
    which runs the trigger in-process and then resumes the sensor as a new task run; each driver pod
    ends DAG_TEST_DRIVER_SECONDS after it is Running. Per run, COMPLETED (watch) -> the wait task's
    end_date (the metadata DB's)."""
    import subprocess
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance as TaskInstanceModel
    from airflow.utils.session import create_session

    started = time.monotonic()
    (SANDBOX / "airflow").mkdir(parents=True, exist_ok=True)
    migrated = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                              capture_output=True, text=True, check=False)
    if migrated.returncode:
        raise Failure(f"airflow db migrate failed:\n{migrated.stdout[-2000:]}{migrated.stderr[-2000:]}")
    migrate_seconds = time.monotonic() - started
    dag_id = f"{DAG_ID}_dag_test"
    folder = SANDBOX / "dags"
    folder.mkdir(exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(DAG_TEST_FILE.format(dag_id=dag_id, interval=interval))
    bag = DagBag(dag_folder=str(path))
    if bag.import_errors or dag_id not in bag.dags:
        raise Failure(f"{path}: {bag.import_errors or 'no DAG'}")
    dag = bag.dags[dag_id]

    stop, ended = threading.Event(), set()

    def end_drivers_when_running() -> None:
        while not stop.wait(0.1):
            for name in [n for n in list(watches.apps) if n.startswith("dagtest-") and n not in ended]:
                if "Running" in watches.pods.get(driver_pod(name), {}):
                    ended.add(name)
                    plane.finish_pod(namespace, driver_pod(name), exit_code=0, after=DAG_TEST_DRIVER_SECONDS,
                                     wait=False)

    finisher = threading.Thread(target=end_drivers_when_running, daemon=True, name="dag-test-drivers")
    finisher.start()
    runs = []
    try:
        for i in range(count):
            before = set(watches.apps)
            run_started = time.time()
            dag_run = dag.test(logical_date=START + timedelta(days=i))
            run_seconds = time.time() - run_started
            with create_session() as session:
                tis = {ti.task_id: (str(ti.state), ti.start_date, ti.end_date) for ti in session.query(
                    TaskInstanceModel).filter(TaskInstanceModel.dag_id == dag_id,
                                              TaskInstanceModel.run_id == dag_run.run_id)}
            (name,) = [n for n in set(watches.apps) - before if n.startswith("dagtest-")]
            if str(dag_run.state) != "success" or "COMPLETED" not in watches.apps[name]:
                raise Failure(f"dag.test() run {i}: {dag_run.state}, tasks {tis}, application "
                              f"{watches.apps[name]}")
            completed = watches.apps[name]["COMPLETED"]
            runs.append({"name": name, "run_seconds": run_seconds,
                         "submit_seconds": (tis["submit"][2] - tis["submit"][1]).total_seconds(),
                         "create_to_running": watches.pods[driver_pod(name)]["Running"] - run_started,
                         "success": tis["wait"][2].timestamp() - completed})
    finally:
        stop.set()
        finisher.join(5)
    return {"interval": interval, "migrate_seconds": migrate_seconds, "runs": runs}


def background_gets(plane, seconds: float) -> float:
    """GETs a second on sparkapplications with no trigger running (the operator's, the watches')."""
    before = ApiCounts.read(plane)
    time.sleep(seconds)
    return (ApiCounts.read(plane) - before).gets / seconds


# -- report ----------------------------------------------------------------------------------------
def med_max(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    return f"{statistics.median(values) * scale:.{digits}f} / {max(values) * scale:.{digits}f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(args, command: str, when: str, setup: dict, seq: list[dict], bare: dict, burst: dict, small: dict,
           reads_small: dict, reads_dag: dict, background: float, dag_test: dict | None) -> None:
    n, m, s = args.sequential, args.apps, args.seconds
    print(f"SparkApplications on a real control plane: {n} created one at a time, {m} waiting at once,")
    print(f"{s:g} s read windows; {os.cpu_count()} CPUs")
    print(f"command: {command}")
    print(f"date: {when}; 1-min load average {setup['load_start']:.2f} at start, "
          f"{setup['load_end']:.2f} at end")
    print(f"control plane up in {setup['plane']:.1f} s, one KWOK node; platform set up in "
          f"{setup['platform']:.1f} s")
    print("(Spark Operator v2.5.2 controller and webhook, deploy/ applied, the worker's token)")
    print()
    print(f"1. create -> driver pod Running, {n} applications one at a time (s)"
          f"{'median':>12}{'max':>8}{'first':>8}")

    def row(label: str, key: str, digits: int = 2) -> None:
        values = [r[key] for r in seq if r[key] is not None]
        first = seq[0][key] if seq[0][key] is not None else float("nan")
        print(f"   {label:<70}{statistics.median(values):>8.{digits}f}{max(values):>8.{digits}f}"
              f"{first:>8.{digits}f}")

    row("execute() (render, POST answered)", "execute", 3)
    row("execute() -> application ADDED (watch)", "added", 3)
    row("application ADDED -> driver pod ADDED (operator: spark-submit)", "spark_submit")
    row("driver pod ADDED -> bound to the node (kube-scheduler)", "scheduled", 3)
    row("bound -> pod Running (KWOK)", "kwok", 3)
    row("TOTAL execute() -> driver pod Running", "total")
    row("  execute() -> SUBMITTED (spark-submit has exited)", "submitted")
    row("  execute() -> application RUNNING", "app_running")
    row("  server timestamps: creationTimestamp -> pod Ready (1 s resolution)", "server_total", 0)
    row("CPU-seconds of the operator's spark-submit, per application", "cpu")
    row("  1-min load average when the driver was Running", "load")
    print("   for comparison, `spark-submit --version` as the operator runs it (two JVM starts, no "
          "submission):")
    print(f"     {bare['wall']:.2f} s, {bare['cpu']:.2f} CPU-s (median of 3)")
    print(f"     SPARK_SUBMIT_OPTS: {bare['opts'] or 'unset'}")
    print(f"   then {m} for 3., at most {burst['at_once']} in submission at a time: all drivers Running "
          f"after {burst['all_running']:.1f} s")
    print(f"     ({burst['all_running'] / m:.1f} s per application), spark-submit {burst['cpu']:.1f} CPU-s "
          "per application")
    failures = {**burst["submission_failures"]}
    failures.update({r["name"]: r["submission_failure"] for r in seq if r.get("submission_failure")})
    if failures:
        print(f"   SUBMISSION_FAILED (then submitted again by the operator): {len(failures)}; the end of "
              f"one errorMessage: {next(iter(failures.values()))!r}")
    print()
    print("2. COMPLETED -> Airflow task success, deferred: trigger event (triggerer process), then")
    print("   execute_complete (here, as the worker that resumes the task); all drivers end at once")
    print(f"   {'poll interval P':<61}{small['interval']:>12g} s{reads_dag['interval']:>12g} s")
    print(f"   {'applications':<61}{small['apps']:>14}{reads_dag['apps']:>14}")
    lines = (
        ("driver pods ended (finish_pod) over (s)", lambda r: f"{r['pods_ended_over']:.2f}"),
        ("driver pod Succeeded -> COMPLETED (operator), med / max (s)", lambda r: med_max(r["operator"])),
        ("COMPLETED -> trigger event, median (s)", lambda r: f"{statistics.median(r['event_delays']):.2f}"),
        ("COMPLETED -> trigger event, max (s)", lambda r: f"{max(r['event_delays']):.2f}"),
        ("execute_complete() (driver log + cost), med / max (ms)",
         lambda r: med_max(r["execute_complete"], 1000, 0)),
        ("COMPLETED -> task success, median (s)", lambda r: f"{statistics.median(r['task_success']):.2f}"),
        ("COMPLETED -> task success, max (s)", lambda r: f"{max(r['task_success']):.2f}"),
        ("expected from the poll: median ~ P/2, max ~ P",
         lambda r: f"{r['interval'] / 2:g} / {r['interval']:g}"),
    )
    for label, fn in lines:
        print(f"   {label:<61}{fn(small):>14}{fn(reads_dag):>14}")
    print()
    print(f"3. API reads with {m} applications waiting at once, their triggers in one event loop,")
    print(f"   {s:g} s per interval")
    print(f"   background GETs on sparkapplications with no trigger running: {background:.2f}/s "
          "(subtracted below)")
    print(f"   {'poll interval P':<61}{reads_small['interval']:>14g} s{reads_dag['interval']:>14g} s")
    lines = (
        ("GETs on sparkapplications (apiserver_request_total)", lambda r: f"{r['reads'].gets:.0f}"),
        ("  of which code 200", lambda r: f"{r['reads'].gets_ok:.0f}"),
        ("reads per application per minute", lambda r: f"{rate(r, background):.2f}"),
        ("expected: 60 / P", lambda r: f"{60 / r['interval']:.2f}"),
        ("API server time per GET, mean (ms)",
         lambda r: f"{1000 * r['reads'].get_seconds / max(r['reads'].gets, 1):.1f}"),
        ("loop lag (10 ms sleep), steady: med / p99 / max (ms)",
         lambda r: "{:.1f} / {:.0f} / {:.0f}".format(*lag_figures(r, steady=True))),
        ("  while the triggers start (first P + 1 s): max (ms)",
         lambda r: f"{lag_figures(r, steady=False)[2]:.0f}"),
        ("watchdog warnings (0.1 s sleep > 0.2 s), steady / start",
         lambda r: "{} / {}".format(*warnings(r))),
        ("longest GC pause: ms, generation, s into the window",
         lambda r: "{:.0f}, {}, {:.1f}".format(*longest_collection(r))),
        ("CPU of the triggerer process, steady / whole window (cores)",
         lambda r: f"{r['window']['steady_cpu'] or float('nan'):.3f} / {r['window']['cpu']:.3f}"),
        ("CPU of kube-apiserver / etcd (cores)",
         lambda r: f"{r['cpu']['apiserver']:.2f} / {r['cpu']['etcd']:.2f}"),
        ("CPU of the whole machine (cores busy, of 2)", lambda r: f"{r['cpu']['machine_cpus']:.2f}"),
        ("1-min load average, start / end",
         lambda r: f"{r['cpu']['load_start']:.1f} / {r['cpu']['load_end']:.1f}"),
        ("Kubernetes hook import, once per process (s; not in window)",
         lambda r: f"{r['import_seconds']:.2f}"),
        ("sensor execute() until TaskDeferred, median (ms)",
         lambda r: f"{1000 * statistics.median(r['defer_seconds']):.2f}"),
    )
    for label, fn in lines:
        print(f"   {label:<61}{fn(reads_small):>16}{fn(reads_dag):>16}")
    if not dag_test:
        return
    runs = dag_test["runs"]
    print()
    print(f"4. Through Airflow: dag.test() of a tiny DAG (submit, then the deferrable sensor at P = "
          f"{dag_test['interval']:g} s), {len(runs)} runs")
    print("   (dag.test() runs the trigger in-process, then the sensor again as a new task run;")
    print(f"   airflow db migrate took {dag_test['migrate_seconds']:.0f} s first)")
    print(f"   {'run':<61}" + "".join(f"{i + 1:>8}" for i in range(len(runs))))
    for label, key in (("dag.test() start -> driver pod Running (s)", "create_to_running"),
                       ("submit task, start -> end (s; the 1st: dag.test's first task)", "submit_seconds"),
                       ("COMPLETED -> the wait task's end_date: task success (s)", "success"),
                       ("whole dag.test() run (s)", "run_seconds")):
        print(f"   {label:<61}" + "".join(f"{r[key]:>8.2f}" for r in runs))


def lag_figures(result: dict, *, steady: bool) -> tuple[float, float, float]:
    """Median, 99th percentile and max of the loop's lag (ms), in the steady part or before it."""
    at = result["window"]["steady_at"]
    lags = [lag for t, lag in result["window"]["lags"] if (t >= at) == steady] or [0.0]
    return 1000 * statistics.median(lags), 1000 * percentile(lags, 0.99), 1000 * max(lags)


def longest_collection(result: dict) -> tuple[float, int, float]:
    collections = result["window"]["collections"] or [(0.0, 0, 0.0)]
    at, generation, seconds = max(collections, key=lambda c: c[2])
    return 1000 * seconds, generation, at


def warnings(result: dict) -> tuple[int, int]:
    at = result["window"]["steady_at"]
    blocked = result["window"]["blocked"]
    return sum(1 for t, _ in blocked if t >= at), sum(1 for t, _ in blocked if t < at)


def rate(result: dict, background: float) -> float:
    gets = result["reads"].gets - background * result["window"]["seconds"]
    return 60 * gets / result["apps"] / result["window"]["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 3 sequential, 10 waiting, 20 s windows (unless given)")
    parser.add_argument("--sequential", type=int, default=None,
                        help="applications created one at a time (10)")
    parser.add_argument("--apps", type=int, default=None,
                        help="applications waiting at once (50; at most 64: the test overlay's quota)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of each read window (60)")
    parser.add_argument("--interval", type=float, default=1.0, help="the small poll interval (default 1 s)")
    parser.add_argument("--submit-at-once", type=int, default=2,
                        help="applications of 3. in submission at a time (default 2: 10 spark-submit JVMs "
                             "at once starve 2 cores until spark-submit fails)")
    parser.add_argument("--dag-test", type=int, default=None,
                        help="runs of a tiny DAG through dag.test() (3; 2 with --quick; 0: none)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    args = parser.parse_args()
    quick = {"sequential": 3, "apps": 10, "seconds": 20.0, "dag_test": 2}
    full = {"sequential": 10, "apps": 50, "seconds": 60.0, "dag_test": 3}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    defaults = {**(quick if args.quick else full), "interval": 1.0, "submit_at_once": 2}
    command = f"{os.path.relpath(sys.executable, Path.cwd())} bench/bench_controlplane.py" + (
        " --quick" if args.quick else "") + "".join(
        f" --{k.replace('_', '-')} {getattr(args, k):g}" for k, v in defaults.items()
        if getattr(args, k) != v)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    from testing.controlplane.harness import ControlPlane
    from testing.controlplane.platform import Platform

    setup = {"load_start": os.getloadavg()[0]}
    started = time.monotonic()
    plane = ControlPlane(kwok=True)
    watches = None
    try:
        plane.start()
        plane.add_node(NODE, cpu="64", memory="256Gi")
        setup["plane"] = time.monotonic() - started
        started = time.monotonic()
        platform = Platform(plane).set_up()
        setup["platform"] = time.monotonic() - started
        os.environ.update({**platform.worker_environment(), **platform.connection_env()})
        namespace = platform.namespace
        watches = Watches(plane, namespace).start()
        apiserver = process_named(plane, "kube-apiserver")
        print(f"1. {args.sequential} applications one at a time", file=sys.stderr, flush=True)
        seq = create_sequentially(plane, watches, args.sequential)
        bare = bare_spark_submit(process_named(plane, "spark-operator-controller"))
        print(f"2. COMPLETED -> task success at P = {args.interval:g} s", file=sys.stderr, flush=True)
        small = wait_through_triggerer(plane, watches, namespace, [r["name"] for r in seq], args.interval,
                                       max(3.0, 3 * args.interval), complete=True, apiserver=apiserver)
        print(f"3. {args.apps} applications at once", file=sys.stderr, flush=True)
        names, burst = create_burst(plane, watches, args.apps, args.submit_at_once)
        background = background_gets(plane, 10)
        print(f"   reads at P = {args.interval:g} s for {args.seconds:g} s", file=sys.stderr, flush=True)
        reads_small = wait_through_triggerer(plane, watches, namespace, names, args.interval, args.seconds,
                                             complete=False, apiserver=apiserver)
        print(f"   reads at P = {DAG_POKE_INTERVAL:g} s for {args.seconds:g} s, then COMPLETED",
              file=sys.stderr, flush=True)
        reads_dag = wait_through_triggerer(plane, watches, namespace, names, DAG_POKE_INTERVAL, args.seconds,
                                           complete=True, apiserver=apiserver)
        dag_test = None
        if args.dag_test:
            print(f"4. {args.dag_test} dag.test() runs at P = {args.interval:g} s", file=sys.stderr,
                  flush=True)
            dag_test = dag_test_runs(plane, watches, namespace, args.dag_test, args.interval)
    except Failure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if watches is not None:
            watches.stop()
        plane.stop()  # raises if a process it started is left
        shutil.rmtree(SANDBOX, ignore_errors=True)
    setup["load_end"] = os.getloadavg()[0]
    report(args, command, when, setup, seq, bare, burst, small, reads_small, reads_dag, background, dag_test)
    if watches.errors:
        print(f"\nwatch restarts: {len(watches.errors)} (first: {watches.errors[0]})")
    if args.json:
        args.json.write_text(json.dumps({
            "command": command, "date": when, "setup": setup, "sequential": seq, "bare_spark_submit": bare,
            "burst": burst,
            "small": small, "reads_small": reads_small, "reads_dag": reads_dag, "background": background,
            "dag_test": dag_test,
        }, default=lambda o: o.__dict__, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
