"""A fake Kubernetes API server over real HTTP, with a simulated Spark Operator controller.

It answers the real ``kubernetes`` client the way kube-apiserver does for what this project uses:

- SparkApplications (``sparkoperator.k8s.io/v1beta2``): create answers **201** with the stored
  object (uid, resourceVersion, creationTimestamp set; any ``status`` sent is dropped, because
  status is a subresource); get/delete answer 404 ``NotFound`` and create 409 ``AlreadyExists``
  with real ``Status`` bodies; an invalid name is 422 ``Invalid``; ``/status`` is the only way to
  change status; list honours ``labelSelector`` equality terms.
- Pods: get, and ``/log`` with ``container`` and ``tailLines``.
- Faults: any request matching a rule can be answered with 401/403/429 (``Retry-After``)/5xx, a
  dropped connection, or an added latency; ``store_anyway`` makes a failed create store the object
  (the answer is lost, the write is not).

:class:`SimulatedSparkOperator` walks applications through scripted states, one step per
:meth:`~SimulatedSparkOperator.step`, keeping the driver pod and its log in line with the state.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

APPS = re.compile(r"^/apis/sparkoperator\.k8s\.io/v1beta2/namespaces/([^/]+)/sparkapplications"
                  r"(?:/([^/]+))?(/status)?$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)(/log)?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str, name: str | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if name is not None:
        body["details"] = {"name": name, "group": "sparkoperator.k8s.io", "kind": "sparkapplications"}
    return body


@dataclass
class Fault:
    """Answer matching requests with ``status`` (or drop the connection when ``status`` is None)."""

    method: str
    path: str  # regular expression on the path
    status: int | None
    times: int = 1
    headers: dict = field(default_factory=dict)
    store_anyway: bool = False
    latency: float = 0.0  # with ``status`` 0: a slow answer, then the real one
    message: str | None = None  # the Status message (default: "injected <reason>")


class FakeKubernetesApi:
    """The server and its state. Use :meth:`start` / :meth:`stop` (the pytest fixture does)."""

    def __init__(self) -> None:
        self.apps: dict[tuple[str, str], dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.logs: dict[tuple[str, str], list[str]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.created: list[str] = []
        self.held: set[tuple[str, str]] = set()
        self.delete_options: list[dict] = []  # the DeleteOptions of each DELETE, in order
        self._resource_version = 0
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kube_config(self, namespace: str = "default") -> dict:
        """A kubeconfig (as a dict) pointing the real client at this server."""
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                      "namespace": namespace}}],
        }

    def start(self) -> FakeKubernetesApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def count(self, method: str, path_pattern: str) -> int:
        return sum(1 for m, p in self.requests if m == method and re.search(path_pattern, p))

    # -- state changes, also used by the simulated controller -----------------------------------
    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def set_status(self, namespace: str, name: str, status: dict) -> None:
        with self._lock:
            app = self.apps[(namespace, name)]
            app["status"] = status
            app["metadata"]["resourceVersion"] = self._next_version()

    def age(self, namespace: str, name: str, seconds: float, *, attempt_only: bool = False) -> None:
        """Make an application look ``seconds`` older: its creationTimestamp and its
        lastSubmissionAttemptTime move back (only the latter with ``attempt_only``)."""
        def back(value: str) -> str:
            moved = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") - timedelta(seconds=seconds)
            return moved.strftime("%Y-%m-%dT%H:%M:%SZ")

        with self._lock:
            app = self.apps[(namespace, name)]
            if not attempt_only:
                app["metadata"]["creationTimestamp"] = back(app["metadata"]["creationTimestamp"])
            status = app.get("status", {})
            if status.get("lastSubmissionAttemptTime"):
                status["lastSubmissionAttemptTime"] = back(status["lastSubmissionAttemptTime"])

    def hold_deletion(self, namespace: str, name: str) -> None:
        """Make the next DELETE of the application set ``deletionTimestamp`` and keep it (as a cluster
        does while the garbage collector removes its dependents) until :meth:`finish_deletion`."""
        with self._lock:
            self.held.add((namespace, name))

    def finish_deletion(self, namespace: str, name: str) -> None:
        with self._lock:
            self.held.discard((namespace, name))
            if self.apps.get((namespace, name), {}).get("metadata", {}).get("deletionTimestamp"):
                self.delete_app(namespace, name)

    def delete_app(self, namespace: str, name: str) -> bool:
        with self._lock:
            if (namespace, name) in self.held and (namespace, name) in self.apps:
                self.apps[(namespace, name)]["metadata"]["deletionTimestamp"] = _now()
                return True
            removed = self.apps.pop((namespace, name), None)
            driver = (removed or {}).get("status", {}).get("driverInfo", {}).get("podName", f"{name}-driver")
            self.pods.pop((namespace, driver), None)
            return removed is not None

    # -- HTTP ----------------------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, code: int, body, headers: dict | None = None, text: bool = False) -> None:
                data = (body if text else json.dumps(body)).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _dispatch(self, method: str) -> None:
                url = urlparse(self.path)
                body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
                if method == "DELETE":  # DeleteOptions come as the body or as query parameters
                    query = {key: values[0] for key, values in parse_qs(url.query).items()}
                    api.delete_options.append({**(body or {}), **query})
                api.requests.append((method, url.path))
                fault = api._take_fault(method, url.path)
                if fault is not None:
                    time.sleep(fault.latency)
                    if fault.store_anyway:
                        api._route(method, url, body)
                    if fault.status is None:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if fault.status:
                        reason = {401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests"}.get(
                            fault.status, "InternalError")
                        message = fault.message or f"injected {reason}"
                        self._send(fault.status, status_body(fault.status, reason, message), fault.headers)
                        return
                code, answer, text = api._route(method, url, body)
                self._send(code, answer, text=text)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_PUT(self) -> None:
                self._dispatch("PUT")

            def do_PATCH(self) -> None:
                self._dispatch("PATCH")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

        return Handler

    def _route(self, method: str, url, body: dict | None) -> tuple[int, object, bool]:
        with self._lock:
            apps = APPS.match(url.path)
            if apps:
                namespace, name, status = apps.groups()
                return self._apps(method, namespace, name, bool(status), body, parse_qs(url.query))
            pods = PODS.match(url.path)
            if pods and method == "GET":
                namespace, pod, log = pods.groups()
                if (namespace, pod) not in self.pods:
                    return 404, status_body(404, "NotFound", f'pods "{pod}" not found'), False
                if log:
                    query = parse_qs(url.query)
                    lines = self.logs.get((namespace, pod), [])
                    if "tailLines" in query:
                        lines = lines[-int(query["tailLines"][0]):]
                    return 200, "".join(f"{line}\n" for line in lines), True
                return 200, self.pods[(namespace, pod)], False
            missing = "the server could not find the requested resource"
            return 404, status_body(404, "NotFound", missing), False

    def _apps(self, method, namespace, name, status, body, query) -> tuple[int, object, bool]:
        key = (namespace, name)
        if name is None and method == "POST":
            name = body["metadata"]["name"]
            key = (namespace, name)
            if not DNS_1123_SUBDOMAIN.match(name) or len(name) > 253:
                return 422, status_body(422, "Invalid", f'SparkApplication.sparkoperator.k8s.io "{name}" is '
                                        f'invalid: metadata.name: Invalid value: "{name}": a lowercase RFC '
                                        "1123 subdomain must consist of lower case alphanumeric characters, "
                                        "'-' or '.'", name), False
            if key in self.apps:
                return 409, status_body(409, "AlreadyExists", f'sparkapplications.sparkoperator.k8s.io '
                                        f'"{name}" already exists', name), False
            stored = {k: v for k, v in body.items() if k != "status"}
            stored["metadata"] = {**body["metadata"], "namespace": namespace, "uid": str(uuid.uuid4()),
                                  "resourceVersion": self._next_version(), "creationTimestamp": _now(),
                                  "generation": 1}
            self.apps[key] = stored
            self.created.append(name)
            return 201, stored, False
        if name is None and method == "GET":
            terms = query.get("labelSelector", [""])[0].split(",")
            selector = dict(term.split("=", 1) for term in terms if term)
            items = [a for (ns, _), a in sorted(self.apps.items()) if ns == namespace and all(
                a["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
            return 200, {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplicationList",
                         "metadata": {"resourceVersion": str(self._resource_version)}, "items": items}, False
        if key not in self.apps:
            return 404, status_body(404, "NotFound", f'sparkapplications.sparkoperator.k8s.io "{name}" '
                                    "not found", name), False
        if method == "GET":
            return 200, self.apps[key], False
        if method == "DELETE":
            self.delete_app(namespace, name)
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": name, "group": "sparkoperator.k8s.io",
                                     "kind": "sparkapplications"}}, False
        if method in ("PUT", "PATCH") and status:
            self.set_status(namespace, name, body.get("status", {}))
            return 200, self.apps[key], False
        return 405, status_body(405, "MethodNotAllowed", "not supported by the fake"), False


#: A scenario: the states an application walks through, one per step. Each step may also say
#: what the driver pod is doing ("Pending" with an unschedulable message, "Running", "Succeeded",
#: "Failed"), name it (``pod_name``; default ``<app>-driver``), add driver log lines, set an error
#: message, record executor pods and their states (``executors``, with ``executor_unschedulable``
#: the scheduler's message on the pending ones), or delete the application.
Step = dict


class SimulatedSparkOperator:
    """Walks every application through the scenario of the first matching name prefix."""

    def __init__(self, api: FakeKubernetesApi) -> None:
        self.api = api
        self.scenarios: dict[str, list[Step]] = {}
        self._positions: dict[tuple[str, str], int] = {}

    def script(self, name_prefix: str, steps: list[Step]) -> None:
        self.scenarios[name_prefix] = steps

    def _scenario(self, name: str) -> list[Step]:
        for prefix, steps in self.scenarios.items():
            if name.startswith(prefix):
                return steps
        return SUCCESS

    def step(self) -> None:
        """Advance every application one step of its scenario (the last step repeats)."""
        with self.api._lock:
            for (namespace, name), app in list(self.api.apps.items()):
                uid = app["metadata"]["uid"]
                steps = self._scenario(name)
                position = self._positions.get((uid, name), 0)
                self._positions[(uid, name)] = position + 1
                self._apply(namespace, name, steps[min(position, len(steps) - 1)])

    def _apply(self, namespace: str, name: str, step: Step) -> None:
        if step.get("delete"):
            self.api.delete_app(namespace, name)
            return
        state = {"state": step["state"]}
        if "error" in step:
            state["errorMessage"] = step["error"]
        pod_name = step.get("pod_name", f"{name}-driver")
        status = {"applicationState": state, "submissionAttempts": step.get("attempts", 1),
                  "driverInfo": {"podName": pod_name, "webUIAddress": "10.0.0.7:4040",
                                 "webUIServiceName": f"{name}-ui-svc", "webUIPort": 4040}}
        # As the operator does: the submission time once submitted, Spark's application id once
        # the driver runs, the termination time at the end.
        before = self.api.apps[(namespace, name)].get("status", {})
        resubmitted = step["state"] == "SUBMITTED" and before.get("applicationState", {}).get(
            "state") != "SUBMITTED"
        if step["state"] not in ("", "SUBMISSION_FAILED"):
            earlier = before.get("lastSubmissionAttemptTime")
            status["lastSubmissionAttemptTime"] = _now() if resubmitted or not earlier else earlier
        if "sparkApplicationId" in before or step["state"] in ("RUNNING", "SUCCEEDING", "COMPLETED",
                                                                 "FAILING"):
            status["sparkApplicationId"] = before.get("sparkApplicationId") or f"spark-{uuid.uuid4().hex}"
        if step["state"] in ("COMPLETED", "FAILED"):
            status["terminationTime"] = _now()
        if "executors" in step:
            status["executorState"] = dict(step["executors"])
            for executor, executor_state in step["executors"].items():
                conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": step["executor_unschedulable"]}] if (
                    executor_state == "PENDING" and step.get("executor_unschedulable")) else []
                self.api.pods[(namespace, executor)] = {
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": executor, "namespace": namespace},
                    "status": {"phase": "Pending" if executor_state == "PENDING" else "Running",
                               "conditions": conditions}}
        self.api.set_status(namespace, name, status)
        pod_phase = step.get("pod")
        pod_key = (namespace, pod_name)
        if pod_phase:
            conditions = []
            if step.get("unschedulable"):
                conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                   "message": step["unschedulable"]})
            self.api.pods[pod_key] = {"apiVersion": "v1", "kind": "Pod",
                                      "metadata": {"name": pod_key[1], "namespace": namespace},
                                      "status": {"phase": pod_phase, "conditions": conditions}}
            self.api.logs.setdefault(pod_key, []).extend(step.get("log", []))


SUCCESS: list[Step] = [
    {"state": "SUBMITTED", "pod": "Pending"},
    {"state": "RUNNING", "pod": "Running", "log": ["starting job"]},
    {"state": "SUCCEEDING", "pod": "Succeeded", "log": ["wrote 827 rows"]},
    {"state": "COMPLETED", "pod": "Succeeded"},
]
