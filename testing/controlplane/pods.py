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
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


@dataclass(frozen=True)
class DriverOutcome:
    """How a scripted driver ends.

    :param exit_code: the driver container's exit code (0: the operator records COMPLETED).
    :param after: seconds from when the driver pod is Running to when it ends.
    :param log: the driver container's log lines.
    :param reason: the container's terminated reason (default Completed / Error, as containerd).
    """

    exit_code: int = 0
    after: float = 0.0
    log: tuple[str, ...] = ()
    reason: str | None = None


@dataclass
class DriverRun:
    """A driver pod the executor ended.

    :param outcome: ``scripted``, or the local run's final state (``COMPLETED``, ``FAILED``).
    """

    namespace: str
    application: str
    pod: str
    exit_code: int
    outcome: str
    log: list[str] = field(default_factory=list)


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
            self._error(f"driver pod {namespace}/{name}: {type(exc).__name__}: {exc}")

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
