"""What happened on the test control plane: every version of every SparkApplication and pod of a
namespace, recorded from watches, for tests that count what was created and the states passed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sparkapp import states

if TYPE_CHECKING:
    from testing.controlplane.harness import ControlPlane

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"


@dataclass
class History:
    """Every version of every SparkApplication and pod of ``namespace``, from watches (as admin):
    (kind, event type, name, uid, state: the application state or the pod phase)."""

    plane: ControlPlane
    namespace: str
    events: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # kind, type, name, uid, state

    def start(self) -> History:
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(kind,), daemon=True)
                         for kind in ("SparkApplication", "Pod")]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _watch(self, kind: str) -> None:
        from kubernetes import client, watch
        with self.plane.api_client() as api:
            custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            version = None
            while not self._stop.is_set():
                if kind == "Pod":
                    lister, args = core.list_namespaced_pod, (self.namespace,)
                else:
                    lister = custom.list_namespaced_custom_object
                    args = (GROUP, VERSION, self.namespace, PLURAL)
                stream = watch.Watch()
                try:
                    for event in stream.stream(lister, *args, timeout_seconds=2,
                                               **({"resource_version": version} if version else {})):
                        obj = event["object"]
                        if kind == "Pod":
                            meta, state = obj.metadata, obj.status.phase or ""
                            name, uid, version = meta.name, meta.uid, meta.resource_version
                        else:
                            name, uid = obj["metadata"]["name"], obj["metadata"]["uid"]
                            version = obj["metadata"]["resourceVersion"]
                            state = states.application_state(obj)
                        self.events.append((kind, event["type"], name, uid, state))
                        if self._stop.is_set():
                            stream.stop()
                except Exception:  # an expired resourceVersion: list again
                    version = None

    def created(self, kind: str, prefix: str) -> int:
        """How many objects of ``kind`` whose name starts with ``prefix`` were created (by uid)."""
        return len({uid for k, t, n, uid, _ in self.events
                    if k == kind and t == "ADDED" and n.startswith(prefix)})

    def settled_created(self, kind: str, prefix: str, *, at_least: int = 1, timeout: float = 15.0) -> int:
        """:meth:`created` once the watch has delivered at least ``at_least`` creations (events
        arrive a moment after the API server answered), or what it counts after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.created(kind, prefix) < at_least and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # and anything that would follow at once
        return self.created(kind, prefix)

    def names(self, kind: str, prefix: str) -> set[str]:
        """The names of the objects of ``kind`` seen whose name starts with ``prefix``."""
        return {n for k, _, n, _, _ in self.events if k == kind and n.startswith(prefix)}

    def states(self, prefix: str) -> list[str]:
        """The application states seen, in order, each once per entry (all applications of ``prefix``)."""
        seen: list[str] = []
        for kind, _, name, _, state in self.events:
            if kind == "SparkApplication" and name.startswith(prefix) and (not seen or seen[-1] != state):
                seen.append(state)
        return seen


