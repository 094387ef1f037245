"""Driver pods that end as their SparkApplication's run did, on the test control plane's KWOK nodes.

On :class:`~testing.controlplane.harness.ControlPlane` the real Spark Operator submits each
SparkApplication, and the driver pod that its spark-submit creates turns Running on a KWOK node,
where no container runs. :class:`DriverExecutor` plays the driver's part: a background thread
watches the pods labelled ``spark-role=driver`` in the namespaces given, and once one is Running on
a KWOK node it finds the pod's SparkApplication (label ``sparkoperator.k8s.io/app-name``) and either

- runs that application's manifest locally with the project's local backend
  (:class:`sparkapp.hooks.local.LocalSparkApplicationClient`: spark-submit in local mode, from the
  manifest as the Spark Operator holds it), sets the driver container's log to what that run
  printed (its last ``log_lines`` lines) and ends the driver pod with exit code 0 when the run
  COMPLETED, 1 otherwise; or
- in a scripted mode, for an application whose name starts with a prefix of ``script``, ends the
  driver pod with that :class:`DriverOutcome` (exit code, after how long, its log lines) without
  running anything.

The pod ends through :meth:`ControlPlane.finish_pod` (KWOK's ``pod-finish`` stage) as a kubelet
reports it, so the Spark Operator itself moves the application to COMPLETED, or to FAILED with its
own ``errorMessage``, while, in the first mode, the job's computation is real.

A scripted driver with ``DriverOutcome(executors=True)`` also plays Spark's driver creating its
executors (Spark 4.3's ``KubernetesClusterSchedulerBackend`` and ``ExecutorPodsAllocator``, see
:class:`_SparkDriver`): from the driver's own Spark configuration (the ``spark.properties`` that
spark-submit put in a ConfigMap mounted into the driver pod, and the executor pod template the
operator wrote beside it) it creates ``spark.executor.instances`` executor pods as Spark builds them,
with the token of the driver pod's service account. The Spark Operator's webhook mutates them (they
carry the operator's ``spark.kubernetes.executor.label.*`` labels), the scheduler places them, KWOK
runs those it places, and the operator records them in ``status.executorState``. When the driver's
outcome ends it, it first ends its Running executors with exit code 0 and deletes them all
(``spark.kubernetes.executor.deleteOnTermination``, true by default), as a stopping SparkContext does.
"""

from __future__ import annotations

import copy
import datetime
import re
import secrets
import shlex
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml

from testing.controlplane.harness import KWOK_NODE_ANNOTATION, ControlPlaneError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from testing.controlplane.harness import ControlPlane

DRIVER_SELECTOR = "spark-role=driver"
APP_NAME_LABEL = "sparkoperator.k8s.io/app-name"
#: The container of the driver pod that the operator reads the exit code of (common.SparkDriverContainerName).
DRIVER_CONTAINER = "spark-kubernetes-driver"
GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
#: The local backend's final state that ends the driver pod with exit code 0.
COMPLETED = "COMPLETED"
#: DriverRun.outcome of a driver whose pod was deleted (with its application) before it ended.
DELETED = "deleted"
#: The labels Spark's driver puts on its executor pods and finds them by (Constants.scala), which the
#: operator's controller reads too (pkg/common/spark.go: LabelSparkRole, LabelSparkApplicationSelector).
SPARK_ROLE_LABEL = "spark-role"
SPARK_APP_ID_LABEL = "spark-app-selector"
#: The executor container (Spark's DEFAULT_EXECUTOR_CONTAINER_NAME; the operator's
#: Spark3DefaultExecutorContainerName, the container its webhook mutates and its executor template names).
EXECUTOR_CONTAINER = "spark-kubernetes-executor"


@dataclass(frozen=True)
class DriverOutcome:
    """How a scripted driver ends.

    :param exit_code: the driver container's exit code (0: the operator records COMPLETED).
    :param after: seconds from when the driver pod is Running to when it ends; with ``executors``
        and ``wait_for_executors``, from when its job can start on its executors.
    :param log: the driver container's log lines.
    :param reason: the container's terminated reason (default Completed / Error, as containerd).
    :param executors: once the driver pod is Running, create its executor pods as Spark's driver
        does (see :class:`_SparkDriver`); before the driver ends, end those Running with exit code 0
        and delete them all unless ``spark.kubernetes.executor.deleteOnTermination`` is false.
    :param wait_for_executors: with ``executors``, start counting ``after`` only once Spark's
        scheduler would start the job: when ``spark.scheduler.minRegisteredResourcesRatio`` of the
        executors (0.8 on Kubernetes unless set) are Running, or at least one is and
        ``spark.scheduler.maxRegisteredResourcesWaitingTime`` (30s unless set) has passed since they
        were requested. A driver none of whose executors runs (none can be scheduled: no free GPU)
        stays Running until its pod is deleted (with its application) or the executor is stopped,
        as a real driver waits for resources; then it is left as it is. When false, ``after``
        counts from when the driver pod is Running, whatever its executors do.
    """

    exit_code: int = 0
    after: float = 0.0
    log: tuple[str, ...] = ()
    reason: str | None = None
    executors: bool = False
    wait_for_executors: bool = True


@dataclass
class DriverRun:
    """A driver pod the executor ended, or that went away while it waited.

    :param exit_code: the driver container's exit code; None when its pod was deleted first.
    :param outcome: ``scripted``, the local run's final state (``COMPLETED``, ``FAILED``), or
        ``deleted`` (a scripted driver whose pod was deleted while it waited or ran).
    :param executors: the executor pods the driver created, in order, each with the exit code it
        ended with (0), or None for one that was not Running when the driver ended (Pending: it
        never ran) or when its pod was deleted.
    """

    namespace: str
    application: str
    pod: str
    exit_code: int | None
    outcome: str
    log: list[str] = field(default_factory=list)
    executors: dict[str, int | None] = field(default_factory=dict)


class _SubmitOutput:
    """What spark-submit printed, per thread: a structlog processor ahead of Airflow's own.

    The local backend's ``SparkSubmitHook`` logs each line spark-submit prints through structlog
    (Airflow 3's logging), which writes to a stream and not through the ``logging`` module; this
    processor copies the events of the threads that asked for them and passes every event on unchanged.
    """

    def __init__(self) -> None:
        self._lines: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, logger, method_name: str, event_dict: dict) -> dict:
        lines = self._lines.get(threading.get_ident())
        if lines is not None:
            event, args = str(event_dict.get("event", "")), event_dict.get("positional_args")
            if args:
                try:
                    event = event % args
                except (TypeError, ValueError):
                    pass
            lines.extend(event.splitlines() or [""])
        return event_dict

    def install(self) -> None:
        """Put this processor first; again after Airflow configured its logging anew (idempotent)."""
        # Airflow configures structlog when it is first imported, replacing the processors
        import airflow.providers.apache.spark.hooks.spark_submit  # noqa: F401
        import structlog
        with self._lock:
            processors = structlog.get_config()["processors"]
            if self not in processors:
                structlog.configure(processors=[self, *processors])

    def remove(self) -> None:
        import structlog
        with self._lock:
            processors = structlog.get_config()["processors"]
            if self in processors:
                structlog.configure(processors=[p for p in processors if p is not self])

    def start(self) -> list[str]:
        return self._lines.setdefault(threading.get_ident(), [])

    def stop(self) -> None:
        self._lines.pop(threading.get_ident(), None)


class DriverExecutor:
    """Ends the driver pods of SparkApplications on KWOK nodes as their runs did (see the module).

    :param plane: the control plane (``kwok=True``, the Spark Operator started).
    :param namespaces: the namespaces whose driver pods it watches.
    :param script: per application name prefix, how a driver of such an application ends without
        running anything; the longest matching prefix wins.
    :param run_locally: run the application of a driver that no prefix matches with the local
        backend; when false such a driver is left Running.
    :param state_dir: the local backend's state directory (default: ``local-runs`` in the workdir).
    :param log_lines: at most this many last lines of a local run's output become the driver's log.
    :param poll: seconds between two looks at the driver pods.
    """

    def __init__(self, plane: ControlPlane, namespaces: Iterable[str] = ("default",), *,
                 script: Mapping[str, DriverOutcome] | None = None, run_locally: bool = True,
                 state_dir: Path | None = None, log_lines: int = 500, poll: float = 0.2) -> None:
        self.plane = plane
        self.namespaces = list(namespaces)
        self.script = dict(script or {})
        self.run_locally = run_locally
        self.state_dir = state_dir
        self.log_lines = log_lines
        self.poll = poll
        self.runs: list[DriverRun] = []
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._kwok_nodes: dict[str, bool] = {}
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._output = _SubmitOutput()
        self._thread = threading.Thread(target=self._loop, name="driver-executor", daemon=True)

    def start(self) -> DriverExecutor:
        if self.state_dir is None:
            assert self.plane.workdir is not None
            self.state_dir = self.plane.workdir / "local-runs"
        if self.run_locally:
            self._output.install()
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 120.0, check: bool = True) -> None:
        """Stop watching; wait up to ``timeout`` seconds for the drivers being ended.

        A scripted driver that still waits (for its executors, or for its ``after``) stops waiting
        and is left as it is: Running, with its executors.

        :param check: raise :class:`ControlPlaneError` if a driver could not be handled (its
            application gone, the API refusing) or is still being run after ``timeout``.
        """
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        self._output.remove()
        left = [w.name for w in self._workers if w.is_alive()]
        if left:
            self.errors.append(f"still running after {timeout:.0f}s: {left}")
        if check and self.errors:
            raise ControlPlaneError("the driver executor failed: " + "; ".join(self.errors))

    def __enter__(self) -> DriverExecutor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(check=exc[0] is None)

    # ----------------------------------------------------------------------------- internal

    def _outcome(self, application: str) -> DriverOutcome | None:
        prefixes = [p for p in self.script if application.startswith(p)]
        return self.script[max(prefixes, key=len)] if prefixes else None

    def _loop(self) -> None:
        from kubernetes import client
        with self.plane.api_client() as api:
            core = client.CoreV1Api(api)
            while not self._stop.wait(self.poll):
                for namespace in self.namespaces:
                    try:
                        pods = core.list_namespaced_pod(namespace, label_selector=DRIVER_SELECTOR).items
                    except Exception as exc:  # the loop must outlive a refused call; the error is kept
                        self._error(f"listing driver pods in {namespace}: {exc}")
                        continue
                    for pod in pods:
                        if (pod.metadata.uid in self._seen or pod.status.phase != "Running"
                                or pod.metadata.deletion_timestamp
                                or not self._on_kwok(core, pod.spec.node_name)):
                            continue
                        self._seen.add(pod.metadata.uid)
                        worker = threading.Thread(target=self._end, args=(pod,), daemon=True,
                                                  name=f"driver {namespace}/{pod.metadata.name}")
                        self._workers.append(worker)
                        worker.start()

    def _on_kwok(self, core, node_name: str | None) -> bool:
        if not node_name:
            return False
        if node_name not in self._kwok_nodes:
            annotations = core.read_node(node_name).metadata.annotations or {}
            self._kwok_nodes[node_name] = annotations.get(KWOK_NODE_ANNOTATION) == "fake"
        return self._kwok_nodes[node_name]

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def _end(self, pod) -> None:
        from kubernetes import client
        namespace, name = pod.metadata.namespace, pod.metadata.name
        application = (pod.metadata.labels or {}).get(APP_NAME_LABEL)
        containers = [c.name for c in pod.spec.containers]
        container = DRIVER_CONTAINER if DRIVER_CONTAINER in containers else containers[0]
        try:
            if not application:
                raise ControlPlaneError(f"driver pod {namespace}/{name} has no {APP_NAME_LABEL} label")
            outcome = self._outcome(application)
            if outcome is not None and outcome.executors:
                self._drive(pod, application, container, outcome)
                return
            if outcome is not None:
                exit_code, state, lines, after, reason = (outcome.exit_code, "scripted", list(outcome.log),
                                                          outcome.after, outcome.reason)
            elif self.run_locally:
                with self.plane.api_client() as api:
                    manifest = client.CustomObjectsApi(api).get_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, application)
                state, lines = self._run_locally(manifest)
                exit_code, after, reason = (0 if state == COMPLETED else 1), 0.0, None
            else:
                return
            self.plane.set_pod_log(namespace, name, container, lines)
            self.plane.finish_pod(namespace, name, exit_code=exit_code, reason=reason, after=after,
                                  wait=False)
            with self._lock:
                self.runs.append(DriverRun(namespace, application, name, exit_code, state, lines))
        except Exception as exc:  # kept, and raised by stop(): a worker thread has no caller to raise to
            if getattr(exc, "status", None) == 404:
                return  # the pod (or its application) was deleted first: there is nothing left to end
            self._error(f"driver pod {namespace}/{name}: {type(exc).__name__}: {exc}")

    def _drive(self, pod, application: str, container: str, outcome: DriverOutcome) -> None:
        """A scripted driver with executors: create them, wait, end them, then end the driver.

        Returns early, leaving the pods as they are, when the executor is stopped; records the run
        as ``deleted`` when the driver pod goes first (its executors go with it: they are its own).
        """
        namespace, name = pod.metadata.namespace, pod.metadata.name
        with _SparkDriver(self.plane, pod) as driver:
            requested = time.monotonic()
            driver.request_executors(stop=self._stop)

            def wait_until(done) -> str | None:
                """None once ``done()``; why not, if the executor was stopped or the driver pod went."""
                while not done():
                    if self._stop.wait(self.poll):
                        return "stopped"
                    if driver.gone():
                        return DELETED
                return None

            interrupted = None
            if outcome.wait_for_executors:
                interrupted = wait_until(lambda: driver.job_can_start(requested))
            if not interrupted:
                deadline = time.monotonic() + outcome.after
                interrupted = wait_until(lambda: time.monotonic() >= deadline)
            if interrupted == DELETED:
                with self._lock:
                    self.runs.append(DriverRun(namespace, application, name, None, DELETED,
                                               executors=dict.fromkeys(driver.executors)))
            if interrupted:
                return
            executors = driver.stop_executors()
        lines = list(outcome.log)
        self.plane.set_pod_log(namespace, name, container, lines)
        self.plane.finish_pod(namespace, name, exit_code=outcome.exit_code, reason=outcome.reason,
                              wait=False)
        with self._lock:
            self.runs.append(DriverRun(namespace, application, name, outcome.exit_code, "scripted", lines,
                                       executors))

    def _run_locally(self, manifest: dict) -> tuple[str, list[str]]:
        """Run ``manifest`` with the local backend: its final state and the last lines it printed."""
        from sparkapp.hooks.local import LocalSparkApplicationClient
        meta = manifest["metadata"]
        submitted = {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"],
                     "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations")
                                  if k in meta},
                     "spec": manifest["spec"]}
        self._output.install()
        lines = self._output.start()
        try:
            result = LocalSparkApplicationClient(state_dir=self.state_dir).create_application(submitted)
            state = result["status"]["applicationState"]["state"]
        except Exception as exc:  # spark-submit stopped by a signal, or the manifest refused: a failed driver
            lines.append(f"{type(exc).__name__}: {exc}")
            state = "FAILED"
        finally:
            self._output.stop()
        return state, lines[-self.log_lines:]


# ------------------------------------------------------------------------------------ Spark's driver

#: What Spark 4.3.0's SparkContext puts ahead of ``spark.executor.extraJavaOptions`` (after
#: ``-Djava.net.preferIPv6Addresses``): the launcher's JavaModuleOptions.DEFAULT_MODULE_OPTIONS, as in
#: pyspark's spark-launcher_2.13-4.3.0.jar and in the executor pods Spark 4.3.0 creates.
JAVA_MODULE_OPTIONS = (
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-modules=jdk.incubator.vector",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.type=pooled",
    "-Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE",
    "--sun-misc-unsafe-memory-access=allow",
    "--enable-native-access=ALL-UNNAMED",
)
_BYTE_UNITS = {"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
               "t": 1 << 40, "tb": 1 << 40, "p": 1 << 50, "pb": 1 << 50}
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_JAVA_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _java_properties(text: str) -> dict[str, str]:
    """The entries of a Java ``.properties`` file (java.util.Properties.load: escapes, continuations)."""
    logical, lines = [], iter(text.splitlines())
    for line in lines:
        line = line.lstrip(" \t\f")
        if not line or line[0] in "#!":
            continue
        # a line ending in an odd number of backslashes goes on with the next one
        while (len(line) - len(line.rstrip("\\"))) % 2 == 1:
            line = line[:-1] + next(lines, "").lstrip(" \t\f")
        logical.append(line)
    entries = {}
    for line in logical:
        key, i = [], 0
        while i < len(line) and line[i] not in "=: \t\f":
            if line[i] == "\\" and i + 1 < len(line):
                i += 1
            key.append(line[i:i + 1])
            i += 1
        while i < len(line) and line[i] in " \t\f":
            i += 1
        if i < len(line) and line[i] in "=:":
            i += 1
        while i < len(line) and line[i] in " \t\f":
            i += 1
        entries[_unescape("".join(key))] = _unescape(line[i:])
    return entries


def _unescape(raw: str) -> str:
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == "u":
                out.append(chr(int(raw[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_JAVA_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _mib(value: str) -> int:
    """A Spark size in MiB (JavaUtils.byteStringAsMb): a number alone is MiB; larger units round down."""
    match = re.fullmatch(r"([0-9]+)([a-z]*)", value.strip().lower())
    if not match or match.group(2) not in ("", *_BYTE_UNITS):
        raise ControlPlaneError(f"not a Spark size: {value!r}")
    return int(match.group(1)) * _BYTE_UNITS[match.group(2) or "m"] // _BYTE_UNITS["m"]


def _seconds(value: str, unit: str) -> float:
    """A Spark duration in seconds (JavaUtils.timeStringAs); a number alone is in ``unit``."""
    match = re.fullmatch(r"(-?[0-9]+)([a-z]*)", value.strip().lower())
    if not match or match.group(2) not in ("", *_TIME_UNITS):
        raise ControlPlaneError(f"not a Spark duration: {value!r}")
    return int(match.group(1)) * _TIME_UNITS[match.group(2) or unit]


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _prefixed(conf: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: v for k, v in conf.items() if k.startswith(prefix)}


def _unique_id() -> str:
    """KubernetesUtils.uniqueID: 3 random bytes and the low 40 bits of the time in ms, in hex."""
    return secrets.token_hex(3) + format(int(time.time() * 1000) & 0xFFFFFFFFFF, "x")


def _resource_name_prefix(app_name: str) -> str:
    """KubernetesConf.getResourceNamePrefix: the prefix of executor names when none is configured."""
    prefix = f"{app_name}-{_unique_id()}".strip().lower()
    prefix = re.sub(r"-+", "-", re.sub(r"[^a-z0-9\-]", "-", prefix))
    return re.sub(r"^[0-9]", "x", re.sub(r"^-", "", prefix))


def _app_name_label(app_name: str) -> str:
    """KubernetesConf.getAppNameLabel: the ``spark-app-name`` label."""
    label = re.sub(r"-+", "-", re.sub(r"[^a-z0-9\-]", "-", app_name.strip().lower()))[:63]
    return label.removeprefix("-").removesuffix("-")


def _executor_startup_conf(name: str) -> bool:
    """SparkConf.isExecutorStartupConf: the settings an executor needs before it reaches its driver."""
    return ((name.startswith("spark.auth") and name != "spark.authenticate.secret")
            or name.startswith(("spark.rpc", "spark.network", "spark.port."))
            or (name.startswith("spark.ssl") and "Password" not in name)
            or (name.startswith("spark.") and name.endswith(".port")))


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _mounted_file(core, pod: dict, container: dict, path: str, *, timeout: float = 60.0) -> str:
    """What a container of ``pod`` reads at ``path``, from the ConfigMap volume mounted there.

    spark-submit creates the driver's ConfigMaps just after its pod (they are owned by it), and KWOK
    has the pod Running at once; a kubelet starts no container before its ConfigMap volumes are
    mounted, so this waits up to ``timeout`` seconds for the ConfigMap to be there.
    """
    from kubernetes.client.exceptions import ApiException
    where = f"{path} in pod {pod['metadata']['namespace']}/{pod['metadata']['name']}"
    mounts = sorted((m for m in container.get("volumeMounts", [])
                     if path.startswith(m["mountPath"].rstrip("/") + "/")),
                    key=lambda m: len(m["mountPath"]), reverse=True)
    if not mounts:
        raise ControlPlaneError(f"no volume is mounted at {where}")
    mount = mounts[0]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    if "configMap" not in volume:
        raise ControlPlaneError(f"{where} is on volume {volume['name']}, not a ConfigMap")
    relative = path[len(mount["mountPath"].rstrip("/")) + 1:]
    items = volume["configMap"].get("items")
    key = next((i["key"] for i in items if i["path"] == relative), None) if items else relative
    name, namespace = volume["configMap"]["name"], pod["metadata"]["namespace"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            config_map = core.read_namespaced_config_map(name, namespace)
            break
        except ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if key is None or key not in (config_map.data or {}):
        raise ControlPlaneError(f"ConfigMap {config_map.metadata.name} has nothing for {where}")
    return config_map.data[key]


class _SparkDriver:
    """Spark 4.3's driver in a driver pod, as far as its executors go.

    Reads the driver's configuration as the driver JVM has it: the ``--properties-file`` of its
    container's arguments (``spark.properties`` from the ConfigMap spark-submit mounted), with what
    the image's ``entrypoint.sh`` adds (``spark.driver.bindAddress`` and
    ``spark.executorEnv.SPARK_DRIVER_POD_IP``: the pod's IP), and the executor pod template of
    ``spark.kubernetes.executor.podTemplateFile`` (the operator's, from another mounted ConfigMap).
    Talks to the API server with a token of the driver pod's service account bound to the pod
    (TokenRequest), as the token Kubernetes projects into the pod; a missing RBAC grant shows up as
    the API server's 403.

    :meth:`request_executors` does what KubernetesClusterSchedulerBackend.start does: it creates the
    executors' ConfigMap, then ExecutorPodsAllocator's initial executors, in batches of
    ``spark.kubernetes.allocation.batch.size`` ``spark.kubernetes.allocation.batch.delay`` apart,
    each pod built by :meth:`executor_pod`. :meth:`stop_executors` does what a stopping
    SparkContext does to them.
    """

    def __init__(self, plane: ControlPlane, pod) -> None:
        from kubernetes import client
        self.plane = plane
        self.pod = client.ApiClient().sanitize_for_serialization(pod)
        meta = self.pod["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]
        containers = self.pod["spec"]["containers"]
        driver = next((c for c in containers if c["name"] == DRIVER_CONTAINER), containers[0])
        self.env = {e["name"]: e["value"] for e in driver.get("env", []) if "value" in e}
        args = driver.get("args", [])
        if "--properties-file" not in args:
            raise ControlPlaneError(f"driver pod {self.namespace}/{self.name} has no --properties-file "
                                    f"in its arguments {args}: not started by spark-submit")
        with plane.api_client() as api:
            core = client.CoreV1Api(api)
            conf = _java_properties(_mounted_file(core, self.pod, driver,
                                                  args[args.index("--properties-file") + 1]))
            template_file = conf.get("spark.kubernetes.executor.podTemplateFile")
            template = _mounted_file(core, self.pod, driver, template_file) if template_file else "{}"
            self.template = _without_nulls(yaml.safe_load(template))
        ip = self.pod["status"]["podIP"]
        conf.update({"spark.driver.bindAddress": ip, "spark.executorEnv.SPARK_DRIVER_POD_IP": ip})
        self.conf = conf
        self.app_id = conf["spark.app.id"]
        # KubernetesClusterManager: one prefix for all executors when none is configured
        self.prefix = (conf.get("spark.kubernetes.executor.podNamePrefix")
                       or _resource_name_prefix(conf["spark.app.name"]))
        self.config_map = f"spark-exec-{_unique_id()}-conf-map"  # KubernetesClientUtils.configMapNameExecutor
        self.selector = f"{SPARK_APP_ID_LABEL}={self.app_id},{SPARK_ROLE_LABEL}=executor"
        self.delete_on_termination = _true(conf.get("spark.kubernetes.executor.deleteOnTermination", "true"))
        self.executors: list[str] = []
        self._api = self._admin = None

    def __enter__(self) -> _SparkDriver:
        from kubernetes import client
        account = self.pod["spec"].get("serviceAccountName") or "default"
        with self.plane.api_client() as api:
            token = client.CoreV1Api(api).create_namespaced_service_account_token(
                account, self.namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
                    audiences=[], expiration_seconds=3600, bound_object_ref=client.V1BoundObjectReference(
                        api_version="v1", kind="Pod", name=self.name, uid=self.pod["metadata"]["uid"]))))
        # the whole header value under the key both older clients and 36+ (as an alias) read
        config = client.Configuration(host=self.plane.server,
                                      api_key={"authorization": f"Bearer {token.status.token}"},
                                      ssl_ca_cert=str(self.plane.ca))
        self._api = client.ApiClient(config)
        self.core = client.CoreV1Api(self._api)
        self._admin = self.plane.api_client()
        return self

    def __exit__(self, *exc) -> None:
        self._api.close()
        self._admin.close()

    # ------------------------------------------------------------------------ what Spark reads

    def initial_executors(self) -> int:
        """SchedulerBackendUtils.getInitialTargetExecutorNumber."""
        conf = self.conf
        instances = conf.get("spark.executor.instances")
        if _true(conf.get("spark.dynamicAllocation.enabled")):
            minimum = int(conf.get("spark.dynamicAllocation.minExecutors", "0"))
            initial = int(conf.get("spark.dynamicAllocation.initialExecutors", str(minimum)))
            return max(minimum, initial, int(instances or 0))
        return int(instances) if instances is not None else 2  # DEFAULT_NUMBER_EXECUTORS

    def _owner(self) -> dict:
        meta = self.pod["metadata"]
        return {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"],
                "controller": True}

    def _memory_mib(self) -> tuple[int, int]:
        """The executor's memory and its pod's (ResourceProfile.getResourcesForClusterManager), MiB."""
        conf = self.conf
        memory = _mib(conf.get("spark.executor.memory", "1g"))
        factor = float(conf.get("spark.executor.memoryOverheadFactor")
                       or conf.get("spark.kubernetes.memoryOverheadFactor", "0.1"))
        minimum = _mib(conf.get("spark.executor.minMemoryOverhead", "384m"))
        overhead = (_mib(conf["spark.executor.memoryOverhead"]) if "spark.executor.memoryOverhead" in conf
                    else max(int(factor * memory), minimum))
        off_heap = (_mib(conf.get("spark.memory.offHeap.size", "0"))
                    if _true(conf.get("spark.memory.offHeap.enabled")) else 0)
        pyspark = (_mib(conf["spark.executor.pyspark.memory"])
                   if conf.get("spark.kubernetes.resource.type") == "python"
                   and "spark.executor.pyspark.memory" in conf else 0)
        return memory, memory + overhead + off_heap + pyspark

    def _java_options(self, executor_id: str) -> list[str]:
        conf = self.conf
        ipv6 = "true" if self.env.get("SPARK_PREFER_IPV6") == "true" else "false"
        user = " ".join(o for o in (conf.get("spark.executor.defaultJavaOptions"),
                                    conf.get("spark.executor.extraJavaOptions")) if o)
        user = user.replace("{{APP_ID}}", self.app_id).replace("{{EXECUTOR_ID}}", executor_id)
        startup = [f"-D{k}={v}" for k, v in sorted(conf.items()) if _executor_startup_conf(k)]
        return [f"-Djava.net.preferIPv6Addresses={ipv6}", *JAVA_MODULE_OPTIONS, *shlex.split(user), *startup]

    def executor_pod(self, executor_id: int) -> dict:
        """Executor ``executor_id``'s pod as Spark 4.3's KubernetesExecutorBuilder builds it.

        The executor pod template, then the feature steps in Spark's order: BasicExecutorFeatureStep
        (name ``<prefix>-exec-<id>``, hostname, labels, annotations, owner: the driver pod, the
        container's image, pull policy, cpu and memory, ``<vendor>/<name>`` limits of
        ``spark.executor.resource.*``, resize policy, environment, block manager port, ``executor``
        argument, ``allowPrivilegeEscalation``, the executors' ConfigMap at /opt/spark/conf,
        restart policy Never, termination grace period, node selectors, image pull secrets, scheduler
        name), ExecutorKubernetesCredentialsFeatureStep (service account), MountSecretsFeatureStep,
        EnvSecretsFeatureStep, LocalDirsFeatureStep. ``spark.kubernetes.executor.volumes.*``
        (MountVolumesFeatureStep), Hadoop and Kerberos configuration, decommissioning and resource
        profiles other than the default are not played, and refused where they would change the pod.
        """
        conf, eid = self.conf, str(executor_id)
        if _prefixed(conf, "spark.kubernetes.executor.volumes."):
            raise ControlPlaneError("spark.kubernetes.executor.volumes.* (MountVolumesFeatureStep) is not "
                                    "played by the test driver")
        pod = copy.deepcopy(self.template)
        meta, spec = pod.setdefault("metadata", {}), pod.setdefault("spec", {})
        others = spec.pop("containers", [])
        wanted = conf.get("spark.kubernetes.executor.podTemplateContainerName")
        index = next((i for i, c in enumerate(others) if c.get("name") == wanted), 0 if others else None)
        container = others.pop(index) if index is not None else {}

        # BasicExecutorFeatureStep
        name = f"{self.prefix}-exec-{eid}"
        hostname = re.sub(r"[^A-Za-z0-9_-]+", "_", re.sub(r"^[^A-Za-z0-9_]+", "", name[-63:]))
        memory, pod_memory = self._memory_mib()
        cores = conf.get("spark.executor.cores", "1")
        image = (conf.get("spark.kubernetes.executor.container.image")
                 or conf.get("spark.kubernetes.container.image"))
        if not image:
            raise ControlPlaneError("Must specify the executor container image")  # Spark's own words
        custom = {}
        for resource in {k.split(".", 1)[0] for k in _prefixed(conf, "spark.executor.resource.")}:
            amount = conf.get(f"spark.executor.resource.{resource}.amount")
            vendor = conf.get(f"spark.executor.resource.{resource}.vendor")
            if amount is None:
                continue
            if not vendor:
                raise ControlPlaneError(f"Resource: {resource} was requested, but vendor was not specified.")
            custom[f"{vendor}/{resource}"] = amount
        # spark.kubernetes.executor.useDriverPodIP (true since 4.1): the bind address, the pod's IP
        use_pod_ip = _true(conf.get("spark.kubernetes.executor.useDriverPodIP", "true"))
        driver_host = ((conf.get("spark.driver.bindAddress") if use_pod_ip else None)
                       or conf["spark.driver.host"])
        driver_url = f"spark://CoarseGrainedScheduler@{driver_host}:{conf.get('spark.driver.port', '7078')}"
        environment = [
            ("SPARK_DRIVER_URL", driver_url),
            ("SPARK_EXECUTOR_CORES", cores),
            ("SPARK_EXECUTOR_MEMORY", f"{memory}m"),
            ("SPARK_APPLICATION_ID", self.app_id),
            ("SPARK_CONF_DIR", "/opt/spark/conf"),
            ("SPARK_EXECUTOR_ID", eid),
            ("SPARK_RESOURCE_PROFILE_ID", "0"),
            *_prefixed(conf, "spark.executorEnv.").items(),
            *([("SPARK_CLASSPATH", conf["spark.executor.extraClassPath"])]
              if "spark.executor.extraClassPath" in conf else []),
            *((f"SPARK_JAVA_OPT_{i}", o) for i, o in enumerate(self._java_options(eid))),
        ]
        # Utils.getCurrentUserName: the driver JVM's SPARK_USER (spark-submit sets it), else its user
        user = self.env.get("SPARK_USER", "spark")
        env = [*container.get("env", []), {"name": "SPARK_USER", "value": user},
               *({"name": k, "value": v} for k, v in environment),
               *({"name": n, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": f}}}
                 for n, f in (("SPARK_EXECUTOR_POD_IP", "status.podIP"),
                              ("SPARK_EXECUTOR_POD_NAME", "metadata.name")))]
        resources = container.setdefault("resources", {})
        requests, limits = resources.setdefault("requests", {}), resources.setdefault("limits", {})
        requests.update({"memory": f"{pod_memory}Mi",
                         "cpu": conf.get("spark.kubernetes.executor.request.cores", cores)})
        limits.update({"memory": f"{pod_memory}Mi", **custom})
        if "spark.kubernetes.executor.limit.cores" in conf:
            limits["cpu"] = conf["spark.kubernetes.executor.limit.cores"]
        port = int(conf.get("spark.blockManager.port", "7079"))
        allow = conf.get("spark.kubernetes.executor.securityContext.allowPrivilegeEscalation",
                         conf.get("spark.kubernetes.securityContext.allowPrivilegeEscalation", "false"))
        container.update({
            "name": container.get("name") or EXECUTOR_CONTAINER, "image": image,
            "imagePullPolicy": conf.get("spark.kubernetes.container.image.pullPolicy", "IfNotPresent"),
            "resizePolicy": [*container.get("resizePolicy", []),
                             {"resourceName": "cpu", "restartPolicy": "NotRequired"},
                             {"resourceName": "memory", "restartPolicy": "NotRequired"}],
            "env": env,
            "ports": [*container.get("ports", []), *([{"name": "blockmanager", "containerPort": port}]
                                                     if port else [])],
            "args": [*container.get("args", []), "executor"],
            "securityContext": {**container.get("securityContext", {}),
                                "allowPrivilegeEscalation": _true(allow)},
        })
        volumes, mounts = spec.setdefault("volumes", []), container.setdefault("volumeMounts", [])
        if not _true(conf.get("spark.kubernetes.executor.disableConfigMap")):
            mounts.append({"name": "spark-conf-volume-exec", "mountPath": "/opt/spark/conf"})
            volumes.append({"name": "spark-conf-volume-exec", "configMap": {"name": self.config_map}})

        def substituted(values: dict[str, str]) -> dict[str, str]:
            return {k: v.replace("{{APP_ID}}", self.app_id).replace("{{EXECUTOR_ID}}", eid)
                    for k, v in values.items()}

        meta["name"] = name
        meta["labels"] = {**meta.get("labels", {}),
                          **substituted(_prefixed(conf, "spark.kubernetes.executor.label.")),
                          "spark-version": self.pod["metadata"]["labels"]["spark-version"],
                          "spark-exec-id": eid, SPARK_APP_ID_LABEL: self.app_id,
                          "spark-app-name": _app_name_label(conf["spark.app.name"]),
                          SPARK_ROLE_LABEL: "executor", "spark-exec-resourceprofile-id": "0"}
        annotations = substituted(_prefixed(conf, "spark.kubernetes.executor.annotation."))
        if annotations or meta.get("annotations"):
            meta["annotations"] = {**meta.get("annotations", {}), **annotations}
        meta["ownerReferences"] = [*meta.get("ownerReferences", []), self._owner()]
        spec.update({
            "hostname": hostname, "restartPolicy": "Never",
            "terminationGracePeriodSeconds": int(_seconds(
                conf.get("spark.kubernetes.executor.terminationGracePeriodSeconds", "30s"), "s")),
        })
        node_selector = {**_prefixed(conf, "spark.kubernetes.node.selector."),
                         **_prefixed(conf, "spark.kubernetes.executor.node.selector.")}
        if node_selector or spec.get("nodeSelector"):
            spec["nodeSelector"] = {**spec.get("nodeSelector", {}), **node_selector}
        pull_secrets = conf.get("spark.kubernetes.container.image.pullSecrets", "").split(",")
        if any(s.strip() for s in pull_secrets):
            spec["imagePullSecrets"] = [*spec.get("imagePullSecrets", []),
                                        *({"name": s.strip()} for s in pull_secrets if s.strip())]
        scheduler = (conf.get("spark.kubernetes.executor.scheduler.name")
                     or conf.get("spark.kubernetes.scheduler.name"))
        if scheduler:
            spec["schedulerName"] = scheduler

        # ExecutorKubernetesCredentialsFeatureStep: the template's account, else the executor's, else
        # the driver's
        if not spec.get("serviceAccountName"):
            account = (conf.get("spark.kubernetes.authenticate.executor.serviceAccountName")
                       or conf.get("spark.kubernetes.authenticate.driver.serviceAccountName"))
            if account:
                spec["serviceAccount"] = spec["serviceAccountName"] = account
        # MountSecretsFeatureStep, EnvSecretsFeatureStep
        for secret, path in _prefixed(conf, "spark.kubernetes.executor.secrets.").items():
            volumes.append({"name": f"{secret}-volume", "secret": {"secretName": secret}})
            mounts.append({"name": f"{secret}-volume", "mountPath": path})
        for variable, ref in _prefixed(conf, "spark.kubernetes.executor.secretKeyRef.").items():
            secret, _, key = ref.partition(":")
            env.append({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
        # LocalDirsFeatureStep: the driver JVM's SPARK_LOCAL_DIRS (its container's), else spark.local.dir
        local = [m["mountPath"] for m in mounts if m["name"].startswith("spark-local-dir-")]
        if not local:
            local = (self.env.get("SPARK_LOCAL_DIRS") or conf.get("spark.local.dir")
                     or f"/var/data/spark-{uuid.uuid4()}").split(",")
            medium = {"medium": "Memory"} if _true(conf.get("spark.kubernetes.local.dirs.tmpfs")) else {}
            for i, path in enumerate(local, start=1):
                volumes.append({"name": f"spark-local-dir-{i}", "emptyDir": medium})
                mounts.append({"name": f"spark-local-dir-{i}", "mountPath": path})
        env.append({"name": "SPARK_LOCAL_DIRS", "value": ",".join(local)})
        # ExecutorPodsAllocator: the Spark container goes after the template's others
        spec["containers"] = [*others, container]
        return {"apiVersion": "v1", "kind": "Pod", **pod}

    # --------------------------------------------------------------------------- what it does

    def request_executors(self, *, stop: threading.Event) -> None:
        """The executors' ConfigMap, then the initial executors in batches (see the class)."""
        conf, ns = self.conf, self.namespace
        if not _true(conf.get("spark.kubernetes.executor.disableConfigMap")):
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")
            header = (f"#Java properties built from Kubernetes config map with name: {self.config_map}\n"
                      f"#{now}\n")
            self.core.create_namespaced_config_map(ns, {
                "metadata": {"name": self.config_map, "ownerReferences": [self._owner()],
                             "labels": {SPARK_APP_ID_LABEL: self.app_id, SPARK_ROLE_LABEL: "executor"}},
                "immutable": True,
                "data": {"spark.kubernetes.namespace": ns,
                         "spark.properties": f"{header}spark.kubernetes.namespace={ns}\n"}})
        batch = int(conf.get("spark.kubernetes.allocation.batch.size", "20"))
        delay = _seconds(conf.get("spark.kubernetes.allocation.batch.delay", "1s"), "ms")
        target = self.initial_executors()
        for first in range(1, target + 1, batch):
            if first > 1 and stop.wait(delay):
                return
            for executor_id in range(first, min(first + batch, target + 1)):
                body = self.executor_pod(executor_id)
                self.core.create_namespaced_pod(ns, body)
                self.executors.append(body["metadata"]["name"])

    def _phases(self) -> dict[str, str]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        return {p.metadata.name: p.status.phase for p in pods}

    def job_can_start(self, requested: float) -> bool:
        """Whether Spark's scheduler would run the job's tasks now (see DriverOutcome.wait_for_executors)."""
        target = self.initial_executors()
        if target == 0:
            return True
        running = sum(phase == "Running" for phase in self._phases().values())
        ratio = float(self.conf.get("spark.scheduler.minRegisteredResourcesRatio", "0.8"))
        waited = time.monotonic() - requested >= _seconds(
            self.conf.get("spark.scheduler.maxRegisteredResourcesWaitingTime", "30s"), "ms")
        return running >= 1 and (running >= target * ratio or waited)

    def gone(self) -> bool:
        """Whether the driver pod is deleted or being deleted (its application was, say)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        try:
            pod = client.CoreV1Api(self._admin).read_namespaced_pod(self.name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return pod.metadata.deletion_timestamp is not None

    def stop_executors(self) -> dict[str, int | None]:
        """A stopping SparkContext: its Running executors exit with 0, then it deletes them all.

        CoarseGrainedSchedulerBackend.stop asks each executor to stop (they exit with 0: ended here
        as their kubelet reports it), then KubernetesClusterSchedulerBackend.stop deletes the
        executor pods and their ConfigMap by label, unless ``spark.kubernetes.executor.deleteOnTermination``
        is false. Answers each executor created with its exit code, None for one that was not Running.
        """
        ended: dict[str, int | None] = dict.fromkeys(self.executors)
        running = [name for name, phase in self._phases().items() if phase == "Running"]
        for name in running:
            self.plane.finish_pod(self.namespace, name, exit_code=0, wait=False)
        for name in running:
            self.plane.finish_pod(self.namespace, name, exit_code=0)
            ended[name] = 0
        if self.delete_on_termination:
            self.core.delete_collection_namespaced_pod(self.namespace, label_selector=self.selector)
            self.core.delete_collection_namespaced_config_map(self.namespace, label_selector=self.selector)
        return ended
