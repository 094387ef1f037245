"""A one-machine Kubernetes control plane from real components, started and stopped by the tests.

:func:`build` runs ``testing/controlplane/build.sh``, which builds etcd, kube-apiserver,
kube-controller-manager, kube-scheduler (and the Spark Operator and KWOK) from the Go module proxy
at the versions pinned in the go.mod / go.sum files beside it, into a cache outside the checkout;
a second call finds them there and takes seconds.

:class:`ControlPlane` starts, all on 127.0.0.1 on free ports and with everything written to one
temporary folder:

1. etcd, its data in the folder (no fsync: it is thrown away);
2. kube-apiserver on a secure port, with certificates made here with ``cryptography`` (a CA, a
   serving certificate, a service-account signing key), ``--authorization-mode=Node,RBAC`` and the
   admission plugins a real cluster has, waiting for ``/readyz``;
3. kube-controller-manager and kube-scheduler, each with its own client certificate and kubeconfig
   (users ``system:kube-controller-manager`` and ``system:kube-scheduler``, which RBAC's bootstrap
   policy binds), waiting for their ``/healthz`` and for the ``default`` service account (pods can
   be created from then on);
4. with ``kwok=True``, KWOK with its "fast" stages: nodes made by :meth:`ControlPlane.add_node` turn
   Ready (GPU nodes as the NVIDIA GPU Operator labels and taints them, with ``gpus=``), and pods the
   scheduler binds to them turn Running (no container runs). Two additions of ours make those pods
   behave like a kubelet's where a test needs it: a Stage (``pod-finish``, in the KWOK config this
   module writes) ends a Running pod when :meth:`ControlPlane.finish_pod` annotates it, and
   :meth:`ControlPlane.set_pod_log` gives a container a log that the API server's ``pods/log``
   (``kubectl logs``) reads from KWOK's kubelet-like server, over TLS with certificates made here;
5. on :meth:`ControlPlane.start_spark_operator`, the Spark Operator's CRDs, RBAC (as its Helm chart
   grants, plus NetworkPolicies for Spark 4.3's spark-submit), webhook (TLS from a CA made here,
   called by ``url:`` at 127.0.0.1) and controller (running the venv's ``pyspark`` spark-submit).

The admin credential is a client certificate in group ``system:masters``, written to
:attr:`ControlPlane.kubeconfig` for the ``kubernetes`` client or kubectl.

:meth:`ControlPlane.stop` sends SIGTERM to every process it started, newest first, then SIGKILL to
whatever is still there after a grace period, and checks with psutil that none is left. Each
process is also started with a parent-death signal (SIGKILL), so a test run that is itself killed
leaves none behind either.
"""

from __future__ import annotations

import atexit
import ctypes
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMISSION_PLUGINS = ("NamespaceLifecycle,ServiceAccount,LimitRanger,PodSecurity,ResourceQuota,"
                     "MutatingAdmissionWebhook,ValidatingAdmissionWebhook")
CORE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
POD_CIDR = "10.244.0.0/16"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# GPU nodes as NVIDIA's GPU Operator leaves them: the device plugin's extended resource, GPU Feature
# Discovery's label, and the taint GPU node pools commonly carry (plugins/flight_delays/jobs.py renders
# the matching node selector and toleration for its gpu profile)
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABELS = {"nvidia.com/gpu.present": "true"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
# the annotations the pod-finish Stage reads (_pod_finish_stage below); finish_pod writes them
POD_FINISH = "pod-finish.controlplane.flight-delays.test"
POD_FINISH_EXIT_CODE = f"{POD_FINISH}/exit-code"
POD_FINISH_REASON = f"{POD_FINISH}/reason"
POD_FINISH_MESSAGE = f"{POD_FINISH}/message"
POD_FINISH_AT = f"{POD_FINISH}/finish-at"
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"
SPARK_OPERATOR_NAMESPACE = "spark-operator"
SPARK_OPERATOR_WEBHOOK = "spark-operator-webhook"
SPARK_OPERATOR_CRDS = HERE.parents[2] / "shared" / "crds"
# the controller also needs SparkConnect (v1alpha1), which shared/crds does not hold; see its SOURCE.md
SPARK_OPERATOR_EXTRA_CRDS = HERE / "spark-operator" / "crds"


# A Running pod that finish_pod annotated ends as its kubelet reports containers that exited: phase
# Succeeded (exit code 0) or Failed, every container terminated with the exit code, the reason
# (containerd's Completed / Error unless the annotation names one, e.g. OOMKilled), the message if
# any, started when it started running and finished now; not ready, as the pod (reason PodCompleted,
# as the kubelet's status manager writes). KWOK patches the status subresource with a strategic merge
# patch, so ``running: null`` removes the running state. The delay comes from an RFC 3339 time in an
# annotation, so that a later update of the pod does not restart it. No other stage matches a pod
# that is no longer Pending or Running: it stays ended.
_POD_FINISH_TEMPLATE = """\
{{ $now := Now }}
{{ $annotations := .metadata.annotations }}
{{ $code := index $annotations "@EXIT_CODE@" }}
{{ $phase := "Failed" }}
{{ $reason := "Error" }}
{{ if eq $code "0" }}{{ $phase = "Succeeded" }}{{ $reason = "Completed" }}{{ end }}
{{ with index $annotations "@REASON@" }}{{ $reason = . }}{{ end }}
{{ $message := index $annotations "@MESSAGE@" }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  reason: PodCompleted
  status: "False"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  reason: PodCompleted
  status: "False"
  type: ContainersReady
containerStatuses:
{{ range .status.containerStatuses }}
{{ $started := $now }}
{{ with .state.running }}{{ with .startedAt }}{{ $started = . }}{{ end }}{{ end }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: {{ or .restartCount 0 }}
  state:
    running: null
    terminated:
      exitCode: {{ $code }}
      reason: {{ $reason | Quote }}
      {{ with $message }}
      message: {{ . | Quote }}
      {{ end }}
      startedAt: {{ $started | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: {{ $phase | Quote }}
"""


def _pod_finish_stage() -> dict:
    template = (_POD_FINISH_TEMPLATE.replace("@EXIT_CODE@", POD_FINISH_EXIT_CODE)
                .replace("@REASON@", POD_FINISH_REASON).replace("@MESSAGE@", POD_FINISH_MESSAGE))
    return {
        "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}", "kind": "Stage", "metadata": {"name": "pod-finish"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {"key": f'.metadata.annotations["{POD_FINISH_EXIT_CODE}"]', "operator": "Exists"},
            ]},
            "delay": {"durationMilliseconds": 0,
                      "durationFrom": {"expressionFrom": f'.metadata.annotations["{POD_FINISH_AT}"]'}},
            "next": {"statusTemplate": template},
        },
    }


# KWOK's Logs CRD (kustomize/crd/bases/kwok.x-k8s.io_logs.yaml of v0.8.0, less descriptions and patterns):
# the Go module's copy is not part of the build cache, and with --enable-crds=Logs KWOK reads a pod's
# log files from a Logs object named as the pod
KWOK_LOGS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"logs.{KWOK_GROUP}"},
    "spec": {
        "group": KWOK_GROUP, "scope": "Namespaced",
        "names": {"kind": "Logs", "listKind": "LogsList", "plural": "logs", "singular": "logs"},
        "versions": [{
            "name": KWOK_VERSION, "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object", "required": ["metadata", "spec"],
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {"type": "object", "required": ["logs"], "properties": {"logs": {
                        "type": "array", "items": {"type": "object", "properties": {
                            "containers": {"type": "array", "items": {"type": "string"}},
                            "follow": {"type": "boolean"},
                            "logsFile": {"type": "string"},
                            "previousLogsFile": {"type": "string"},
                        }}}}},
                    "status": {"type": "object", "properties": {"conditions": {
                        "type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["type"],
                        "items": {"type": "object",
                                  "required": ["lastTransitionTime", "message", "reason", "status", "type"],
                                  "properties": {
                                      "lastTransitionTime": {"type": "string", "format": "date-time"},
                                      "message": {"type": "string", "maxLength": 32768},
                                      "reason": {"type": "string", "maxLength": 1024, "minLength": 1},
                                      "status": {"type": "string"},
                                      "type": {"type": "string", "maxLength": 316},
                                  }}}}},
                },
            }},
        }],
    },
}


def _cri_log(lines: Iterable[str], *, stream: str = "stdout") -> str:
    """``lines`` in the CRI log format that container runtimes write and the kubelet reads."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{now} {stream} F {part}\n" for line in lines for part in (line.splitlines() or [""]))


class ControlPlaneError(RuntimeError):
    """A component did not build, did not start, or did not stop."""


# ---------------------------------------------------------------------------------------------- build


def build(components: Iterable[str] = (), *, timeout: float = 3600) -> dict[str, Path]:
    """Build (or find in the cache) ``components`` (all when empty); answer each one's binary.

    Raises :class:`ControlPlaneError` with build.sh's message (naming the component) on failure.
    """
    env = dict(os.environ)
    if shutil.which("go", path=env.get("PATH")) is None and Path("/usr/local/go/bin/go").exists():
        env["PATH"] = f"/usr/local/go/bin:{env.get('PATH', '')}"
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), *components], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    paths = {}
    for line in proc.stdout.splitlines():
        name, sep, path = line.partition("=")
        if sep:
            paths[name] = Path(path)
    missing = [c for c in components if c not in paths]
    if missing:
        raise ControlPlaneError(f"{BUILD_SCRIPT} named no binary for {missing}:\n{proc.stdout}")
    return paths


# ---------------------------------------------------------------------------------------- certificates


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


@dataclass
class CertificateAuthority:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "flight-delays-test-ca", *, days: int = 2) -> CertificateAuthority:
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        name = _name(common_name)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    def issue(self, common_name: str, *, organization: str | None = None, server: bool = False,
              dns: Iterable[str] = (), ips: Iterable[str] = (), days: int = 2) -> tuple[bytes, bytes]:
        """A leaf certificate and its key, PEM: a client one, or a serving one when ``server``."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (x509.CertificateBuilder().subject_name(_name(common_name, organization))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                                content_commitment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return _pem_cert(builder.sign(self.key, hashes.SHA256())), _pem_key(key)


# ------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class ControlPlane:
    """The control plane of one test (or session); see the module's docstring.

    ``binaries`` maps a component to its binary (default: :func:`build`). ``workdir`` is kept after
    :meth:`stop` when ``keep`` is true (or ``CONTROLPLANE_KEEP=1``), for its logs.
    """

    binaries: dict[str, Path] | None = None
    kwok: bool = False
    workdir: Path | None = None
    keep: bool = field(default_factory=lambda: os.environ.get("CONTROLPLANE_KEEP") == "1")
    start_timeout: float = 120.0
    stop_timeout: float = 15.0
    processes: list[Process] = field(default_factory=list)
    server: str = ""
    kubeconfig: Path | None = None

    # ------------------------------------------------------------------------------ public

    def start(self) -> ControlPlane:
        if self.processes:
            raise ControlPlaneError("already started")
        if self.binaries is None:
            self.binaries = build((*CORE, "kwok") if self.kwok else CORE)
        self._own_workdir = self.workdir is None
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="flight-delays-controlplane-"))
        atexit.register(self.stop)
        try:
            self._write_pki()
            self._start_etcd()
            self._start_apiserver()
            self._start_controller_manager()
            self._start_scheduler()
            if self.kwok:
                self._start_kwok()
        except BaseException:
            self.stop(remove=False)
            raise
        return self

    def stop(self, remove: bool | None = None) -> None:
        """SIGTERM every process started, newest first; SIGKILL those left after ``stop_timeout``."""
        atexit.unregister(self.stop)
        procs = [p for p in reversed(self.processes)]
        for p in procs:
            self._signal(p, signal.SIGTERM)
            try:
                p.popen.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal(p, signal.SIGKILL)
                p.popen.wait(self.stop_timeout)
        left = self.leftover()
        for proc in left:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.processes.clear()
        if left:
            raise ControlPlaneError(f"processes left after stop (now killed): {left}")
        if remove is None:
            remove = not self.keep
        if remove and self.workdir is not None and getattr(self, "_own_workdir", False):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def leftover(self) -> list[psutil.Process]:
        """Processes still alive that this control plane started (or their children)."""
        alive = []
        for p in self.processes:
            try:
                proc = psutil.Process(p.popen.pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
                alive.extend(c for c in proc.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE)
            except psutil.NoSuchProcess:
                pass
        # children re-parented after their parent died still carry the workdir in their arguments
        marker = str(self.workdir) if self.workdir else None
        if marker:
            for proc in psutil.process_iter(["cmdline"]):
                try:
                    if any(marker in a for a in (proc.info["cmdline"] or [])) and proc not in alive \
                            and proc.status() != psutil.STATUS_ZOMBIE:
                        alive.append(proc)
                except psutil.NoSuchProcess:
                    pass
        return alive

    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.processes]

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_node(self, name: str, *, cpu: str = "32", memory: str = "256Gi", pods: str = "110",
                 gpus: int = 0, labels: dict | None = None, wait: bool = True) -> None:
        """A fake node that KWOK (``kwok=True``) runs pods on: it turns Ready, and its pods Running.

        :param gpus: with more than 0, a GPU node as NVIDIA's GPU Operator leaves one: ``gpus`` of
            the extended resource ``nvidia.com/gpu`` (capacity and allocatable), the label
            ``nvidia.com/gpu.present=true`` and the taint ``nvidia.com/gpu=present:NoSchedule``.
        :param labels: more labels of the node.
        :param wait: wait until the node is Ready and the node lifecycle controller has taken away
            the ``node.kubernetes.io/not-ready`` taint that admission put on it, so that the
            scheduler places pods on it from then on.
        """
        from kubernetes import client
        capacity = {"cpu": cpu, "memory": memory, "pods": pods}
        node_labels = {"type": "kwok", "kubernetes.io/hostname": name}
        taints = []
        if gpus > 0:
            capacity[GPU_RESOURCE] = str(gpus)
            node_labels.update(GPU_NODE_LABELS)
            taints.append(client.V1Taint(**GPU_TAINT))
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            core.create_node(client.V1Node(
                metadata=client.V1ObjectMeta(name=name, annotations={KWOK_NODE_ANNOTATION: "fake"},
                                             labels={**node_labels, **(labels or {})}),
                spec=client.V1NodeSpec(taints=taints or None),
                status=client.V1NodeStatus(capacity=capacity, allocatable=capacity)))
            if not wait or not self.kwok:
                return
            deadline = time.monotonic() + self.start_timeout
            while True:
                node = core.read_node(name)
                ready = {c.type: c.status for c in node.status.conditions or []}.get("Ready") == "True"
                not_ready = [t.key for t in node.spec.taints or [] if t.key.startswith("node.kubernetes.io/")]
                if ready and not not_ready:
                    return
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"node {name} not ready for pods after "
                                            f"{self.start_timeout:.0f}s: Ready={ready}, taints {not_ready}")
                time.sleep(0.1)

    def finish_pod(self, namespace: str, name: str, *, exit_code: int = 0, reason: str | None = None,
                   message: str = "", after: float = 0.0, wait: bool = True, timeout: float = 60.0):
        """End a pod on a KWOK node as its kubelet reports containers that exited with ``exit_code``.

        KWOK's ``pod-finish`` Stage does it, from annotations this writes: once the pod is Running
        (at once if it is), and ``after`` seconds from now, its phase turns Succeeded (exit code 0)
        or Failed, every container ``state.terminated`` (``exitCode``, ``reason``, ``message`` when
        given, ``startedAt``, ``finishedAt``) and not ready, the pod's Ready and ContainersReady
        conditions False with reason PodCompleted. Answers the pod (the ended one when ``wait``).

        :param reason: the containers' ``reason``; default Completed for 0 and Error otherwise, as
            containerd reports (a test may say e.g. OOMKilled with 137).
        :param message: the containers' termination ``message`` (a kubelet's is the termination log).
        :param after: seconds from now before the pod ends (KWOK waits, not this call).
        :param wait: wait until the pod has ended (``after`` + ``timeout`` seconds at most).
        :raises ControlPlaneError: the pod's restart policy would have a kubelet restart its
            containers instead (``Always``; ``OnFailure`` with a non-zero exit code), or it did not end.
        """
        from kubernetes import client
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            pod = core.read_namespaced_pod(name, namespace)
            policy = pod.spec.restart_policy
            if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
                raise ControlPlaneError(
                    f"pod {namespace}/{name} has restartPolicy {policy}: a kubelet would restart its "
                    f"containers after exit code {exit_code}, not end the pod; give it restartPolicy Never")
            at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=after)
            annotations = {POD_FINISH_EXIT_CODE: str(exit_code),
                           POD_FINISH_AT: at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
            if reason:
                annotations[POD_FINISH_REASON] = reason
            if message:
                annotations[POD_FINISH_MESSAGE] = message
            pod = core.patch_namespaced_pod(name, namespace, {"metadata": {"annotations": annotations}})
            if not wait:
                return pod
            deadline = time.monotonic() + after + timeout
            while pod.status.phase not in ("Succeeded", "Failed"):
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"pod {namespace}/{name} did not end within "
                                            f"{after + timeout:.0f}s (phase {pod.status.phase}, node "
                                            f"{pod.spec.node_name!r}); KWOK's log ends:\n{self._kwok_tail()}")
                time.sleep(0.1)
                pod = core.read_namespaced_pod(name, namespace)
            return pod

    def set_pod_log(self, namespace: str, name: str, container: str, lines: Iterable[str], *,
                    wait: bool = True, timeout: float = 30.0) -> Path:
        """Give a container of a pod on a KWOK node the log ``lines``, read through ``pods/log``.

        The lines go to a file in the CRI log format (as a container runtime writes it, under the
        workdir's ``pod-logs/<namespace>_<name>_<uid>/``, as a kubelet's ``/var/log/pods``), and a
        KWOK ``Logs`` object named as the pod (owned by it, so that the garbage collector removes it
        with the pod) points KWOK's kubelet-like server at it. A second call replaces the lines.
        Containers with no lines set read as a container that wrote nothing: an empty log. Answers
        the file.

        :param lines: the log's lines, without line ends (a line that has some is split).
        :param wait: when the pod is on a node, wait until the API server reads back exactly these
            lines (KWOK learns of a new Logs object through a watch).
        """
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        assert self.workdir is not None
        lines = list(lines)
        with self.api_client() as api:
            core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
            pod = core.read_namespaced_pod(name, namespace)
            names = [c.name for c in [*(pod.spec.init_containers or []), *pod.spec.containers]]
            if container not in names:
                raise ControlPlaneError(f"pod {namespace}/{name} has no container {container!r} "
                                        f"(it has {names})")
            folder = self.workdir / "pod-logs" / f"{namespace}_{name}_{pod.metadata.uid}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{container}.log"
            part = path.with_suffix(".part")
            part.write_text(_cri_log(lines))
            os.replace(part, path)  # a reader sees the old lines or the new ones, never half of them
            logs = [{"containers": [f.stem], "logsFile": str(f)} for f in sorted(folder.glob("*.log"))]
            body = {"apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}", "kind": "Logs",
                    "metadata": {"name": name, "namespace": namespace, "ownerReferences": [{
                        "apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod.metadata.uid}]},
                    "spec": {"logs": [*logs, {"logsFile": str(self.silent_log)}]}}
            try:
                custom.create_namespaced_custom_object(KWOK_GROUP, KWOK_VERSION, namespace, "logs", body)
            except ApiException as e:
                if e.status != 409:
                    raise
                where = (KWOK_GROUP, KWOK_VERSION, namespace, "logs", name)
                current = custom.get_namespaced_custom_object(*where)
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                custom.replace_namespaced_custom_object(*where, body)
            if wait and pod.spec.node_name:
                expected = "".join(f"{part}\n" for line in lines for part in (line.splitlines() or [""]))
                deadline = time.monotonic() + timeout
                while (got := self.read_pod_log(namespace, name, container)) != expected:
                    if time.monotonic() > deadline:
                        raise ControlPlaneError(f"the log of {namespace}/{name} container {container} reads "
                                                f"{got[-500:]!r} after {timeout:.0f}s, not the lines set")
                    time.sleep(0.1)
        return path

    def _kwok_tail(self) -> str:
        return next((p.tail(2000) for p in self.processes if p.name == "kwok"), "")

    def read_pod_log(self, namespace: str, name: str, container: str, **options) -> str:
        """A container's log as ``kubectl logs`` reads it: ``pods/log``, which the API server proxies.

        :param options: more arguments of ``read_namespaced_pod_log`` (``tail_lines``, ``previous``...).
        """
        from kubernetes import client
        with self.api_client() as api:
            # unparsed: the client would turn the text/plain body into the repr of its bytes
            response = client.CoreV1Api(api).read_namespaced_pod_log(
                name, namespace, container=container, _preload_content=False, **options)
            return response.data.decode()

    def create_spark_account(self, namespace: str, name: str = "spark") -> None:
        """A service account for Spark drivers in ``namespace``, with a Role over the pods, services,
        ConfigMaps and claims its executors need (tests that do not apply deploy/'s)."""
        from kubernetes import client
        with self.api_client() as api:
            core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
            core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name=name)))
            rbac.create_namespaced_role(namespace, client.V1Role(
                metadata=client.V1ObjectMeta(name=name),
                rules=[client.V1PolicyRule(api_groups=[""], verbs=["*"], resources=[
                    "pods", "services", "configmaps", "persistentvolumeclaims"])]))
            rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=name),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
                subjects=[client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)]))

    def kubeconfig_for(self, user: str) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{user}.kubeconfig"

    def api_client(self):
        """A ``kubernetes`` ApiClient as cluster admin."""
        from kubernetes import config
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def start_process(self, name: str, args: list[str], *, ready: Callable[[], bool] | None = None,
                      env: dict | None = None) -> Process:
        """Start ``args`` as ``name`` (log in the workdir), tracked for :meth:`stop`; wait for ``ready``."""
        assert self.workdir is not None
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env={**os.environ, **(env or {})},
                                     start_new_session=True, preexec_fn=_die_with_parent)
        proc = Process(name, popen, log)
        self.processes.append(proc)
        if ready is not None:
            self._wait(proc, ready)
        return proc

    # ----------------------------------------------------------------------------- internal

    @staticmethod
    def _signal(p: Process, sig: int) -> None:
        if p.popen.poll() is not None:
            return
        try:
            os.killpg(p.popen.pid, sig)  # its own session: the group holds it and any child
        except ProcessLookupError:
            pass

    def _wait(self, proc: Process, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise ControlPlaneError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError, ValueError):
                pass
            time.sleep(0.2)
        raise ControlPlaneError(f"{proc.name} not ready after {self.start_timeout:.0f}s:\n{proc.tail()}")

    def _write(self, name: str, data: bytes | str, mode: int = 0o600) -> Path:
        path = self.workdir / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        path.chmod(mode)
        return path

    def _write_pki(self) -> None:
        ca = CertificateAuthority.create()
        self.ca = self._write("ca.crt", _pem_cert(ca.cert), 0o644)
        self._write("ca.key", _pem_key(ca.key))
        cert, key = ca.issue("kube-apiserver", server=True, ips=["127.0.0.1", KUBERNETES_SERVICE_IP],
                             dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                  "kubernetes.default.svc.cluster.local"])
        self.serving_cert = self._write("apiserver.crt", cert)
        self.serving_key = self._write("apiserver.key", key)
        self.sa_key = self._write("sa.key", _pem_key(_key()))
        self._ca = ca
        # the apiserver's connections to kubelets (KWOK's server stands in for them): it checks their
        # serving certificate against the CA, and shows its own client certificate
        cert, key = ca.issue("kube-apiserver-kubelet-client", organization="system:masters")
        self.kubelet_client_cert = self._write("apiserver-kubelet-client.crt", cert)
        self.kubelet_client_key = self._write("apiserver-kubelet-client.key", key)
        cert, key = ca.issue("kwok", server=True, ips=["127.0.0.1"], dns=["localhost"])
        self.kwok_serving_cert = self._write("kwok.crt", cert)
        self.kwok_serving_key = self._write("kwok.key", key)
        # the aggregation layer's front proxy: its own CA, and the client the apiserver proxies as
        front = CertificateAuthority.create("flight-delays-test-front-proxy-ca")
        self.front_proxy_ca = self._write("front-proxy-ca.crt", _pem_cert(front.cert), 0o644)
        cert, key = front.issue("front-proxy-client")
        self.front_proxy_cert = self._write("front-proxy-client.crt", cert)
        self.front_proxy_key = self._write("front-proxy-client.key", key)

    def _kubeconfig(self, user: str, common_name: str, organization: str | None = None) -> Path:
        cert, key = self._ca.issue(common_name, organization=organization)
        crt_path, key_path = self._write(f"{user}.crt", cert), self._write(f"{user}.key", key)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": user,
            "clusters": [{"name": "local", "cluster": {"server": self.server,
                                                       "certificate-authority": str(self.ca)}}],
            "users": [{"name": user, "user": {"client-certificate": str(crt_path),
                                              "client-key": str(key_path)}}],
            "contexts": [{"name": user, "context": {"cluster": "local", "user": user}}],
        }
        return self._write(f"{user}.kubeconfig", yaml.safe_dump(config))

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        data = self.workdir / "etcd"
        data.mkdir(mode=0o700)

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as r:
                return json.load(r).get("health") == "true"

        self.start_process("etcd", [
            str(self.binaries["etcd"]), "--name=controlplane", f"--data-dir={data}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=controlplane=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync=true", "--log-level=warn", "--quota-backend-bytes=1073741824",
        ], ready=ready)

    def _https_ready(self, url: str, *, verify: bool) -> Callable[[], bool]:
        def ready() -> bool:
            if verify:
                ctx = ssl.create_default_context(cafile=str(self.ca))
                ctx.load_cert_chain(str(self.workdir / "admin.crt"), str(self.workdir / "admin.key"))
            else:
                ctx = ssl._create_unverified_context()
            with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
                return r.status == 200
        return ready

    def _start_apiserver(self) -> None:
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        self.kubeconfig = self._kubeconfig("admin", "admin", "system:masters")
        cert_dir = self.workdir / "apiserver-certs"
        cert_dir.mkdir()
        self.start_process("kube-apiserver", [
            str(self.binaries["kube-apiserver"]),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={cert_dir}",
            f"--tls-cert-file={self.serving_cert}", f"--tls-private-key-file={self.serving_key}",
            f"--client-ca-file={self.ca}",
            f"--requestheader-client-ca-file={self.front_proxy_ca}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.front_proxy_cert}",
            f"--proxy-client-key-file={self.front_proxy_key}",
            f"--service-account-key-file={self.sa_key}", f"--service-account-signing-key-file={self.sa_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", f"--enable-admission-plugins={ADMISSION_PLUGINS}",
            "--allow-privileged=true", "--profiling=false", "--endpoint-reconciler-type=none",
            # KWOK's nodes have the address 127.0.0.1 and their own names as Hostname, which no DNS knows
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={self.ca}",
            f"--kubelet-client-certificate={self.kubelet_client_cert}",
            f"--kubelet-client-key={self.kubelet_client_key}",
        ], ready=self._https_ready(f"{self.server}/readyz", verify=True))

    def _start_controller_manager(self) -> None:
        port = free_port()
        kubeconfig = self._kubeconfig("kube-controller-manager", "system:kube-controller-manager")
        self.start_process("kube-controller-manager", [
            str(self.binaries["kube-controller-manager"]),
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'kube-controller-manager-certs'}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.sa_key}", f"--root-ca-file={self.ca}",
            f"--cluster-signing-cert-file={self.ca}", f"--cluster-signing-key-file={self.workdir / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false",
        ], ready=self._https_ready(f"https://127.0.0.1:{port}/healthz", verify=False))
        # ready for pods: the service account controller made the namespace's default account
        self._wait(self.processes[-1], self._https_ready(
            f"{self.server}/api/v1/namespaces/default/serviceaccounts/default", verify=True))

    def _start_scheduler(self) -> None:
        port = free_port()
        kubeconfig = self._kubeconfig("kube-scheduler", "system:kube-scheduler")
        self.start_process("kube-scheduler", [
            str(self.binaries["kube-scheduler"]),
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'kube-scheduler-certs'}",
            "--leader-elect=false", "--profiling=false",
        ], ready=self._https_ready(f"https://127.0.0.1:{port}/healthz", verify=False))

    def _start_kwok(self) -> None:
        """KWOK with its fast stages, ours (``pod-finish``), Logs objects, and its server over TLS.

        Its server stands in for each node's kubelet: the nodes' ``daemonEndpoints`` name its port
        (``--node-port``), the API server proxies ``pods/log`` to it over TLS (its certificate is
        signed by the CA), and it reads each container's log file from the pod's ``Logs`` object
        (``--enable-crds=Logs``), or from the ``ClusterLogs`` here: an empty file, as a container
        that wrote nothing.
        """
        kubeconfig = self._kubeconfig("kwok-controller", "kwok-controller", "system:masters")
        stages = self.binaries["kwok"].parent / "stages.yaml"
        self.silent_log = self._write("pod-logs-empty.log", "", 0o644)
        config = self._write("kwok-config.yaml", yaml.safe_dump_all([
            _pod_finish_stage(),
            {"apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}", "kind": "ClusterLogs",
             "metadata": {"name": "containers-that-wrote-nothing"},
             "spec": {"logs": [{"logsFile": str(self.silent_log)}]}},
        ]), 0o644)
        with self.api_client() as api:
            self._create_crds(api, [KWOK_LOGS_CRD])
        port = free_port()
        self.kwok_port = port

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200

        self.start_process("kwok", [
            str(self.binaries["kwok"]), f"--kubeconfig={kubeconfig}", f"--config={stages}",
            f"--config={config}", "--enable-crds=Logs",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1", "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{port}", f"--node-port={port}",
            f"--tls-cert-file={self.kwok_serving_cert}", f"--tls-private-key-file={self.kwok_serving_key}",
        ], ready=ready)
        # and over TLS, as the API server reaches it
        self._wait(self.processes[-1], self._tls_ready(port, self.ca))

    # ------------------------------------------------------------------------- spark operator

    def start_spark_operator(self, namespaces: Iterable[str] = ("default",), *,
                             namespace: str = SPARK_OPERATOR_NAMESPACE,
                             crds: Path = SPARK_OPERATOR_CRDS) -> None:
        """The Spark Operator (its webhook, then its controller) for SparkApplications in ``namespaces``.

        1. applies the released CRDs from ``crds`` (and SparkConnect's, which the controller needs at
           start, from ``spark-operator/crds``) and waits until they are Established;
        2. creates ``namespace``, the chart's two service accounts there (``spark-operator-controller``,
           ``spark-operator-webhook``) and the RBAC the Helm chart v2.5.2 grants them for job namespaces
           ``namespaces`` (ClusterRoles, and Roles in ``namespace`` and in each job namespace); each
           process authenticates with a token of its service account (TokenRequest), in a kubeconfig;
        3. starts ``spark-operator webhook start``: its serving certificate (for 127.0.0.1 and for the
           Service name the operator checks it against) is signed by a CA made here, valid over a year
           because the operator throws away a certificate that expires within 180 days; both go into
           the Secret the webhook reads at start (it generates none then), and the
           Mutating/ValidatingWebhookConfigurations ``spark-operator-webhook`` call it at
           ``url: https://127.0.0.1:<port>/...`` (no Service) with that CA as caBundle;
        4. starts ``spark-operator controller start --namespaces=...`` with ``SPARK_HOME`` the
           ``pyspark`` package installed beside this Python (so its ``bin/spark-submit`` runs),
           ``KUBERNETES_SERVICE_HOST``/``PORT`` the apiserver (its ``--master k8s://https://...``), and a
           ``spark-defaults.conf`` in ``SPARK_CONF_DIR`` that gives spark-submit the CA and the
           controller's token (``spark.kubernetes.authenticate.submission.*``), as in the chart where
           spark-submit runs in the controller's pod with its service account.
        """
        from kubernetes import client
        assert self.workdir is not None and self.binaries is not None
        if "spark-operator" not in self.binaries:
            self.binaries.update(build(("spark-operator",)))
        binary = str(self.binaries["spark-operator"])
        namespaces = list(namespaces)
        self.spark_operator_namespace = namespace
        with self.api_client() as api:
            self._apply_crds(api, sorted(crds.glob("sparkoperator.k8s.io_*.yaml"))
                             + sorted(SPARK_OPERATOR_EXTRA_CRDS.glob("sparkoperator.k8s.io_*.yaml")))
            core = client.CoreV1Api(api)
            for ns in dict.fromkeys([namespace, *namespaces]):
                self._ensure_namespace(core, ns)
            tokens = self._spark_operator_rbac(api, namespace, namespaces)

            # the webhook's certificate, in the Secret its certificate provider reads
            svc, svc_ns = "spark-operator-webhook-svc", namespace
            webhook_ca = CertificateAuthority.create("spark-operator-webhook-ca", days=400)
            cert, key = webhook_ca.issue(f"{svc}.{svc_ns}.svc", server=True, ips=["127.0.0.1"],
                                         dns=["localhost", f"{svc}.{svc_ns}.svc"], days=400)
            ca_pem = _pem_cert(webhook_ca.cert)
            self._write("spark-operator-webhook-ca.crt", ca_pem, 0o644)
            core.create_namespaced_secret(namespace, client.V1Secret(
                metadata=client.V1ObjectMeta(name=SPARK_OPERATOR_WEBHOOK), string_data={
                    "ca-key.pem": _pem_key(webhook_ca.key).decode(), "ca-cert.pem": ca_pem.decode(),
                    "server-key.pem": key.decode(), "server-cert.pem": cert.decode()}))
            port = free_port()
            self.spark_operator_webhook_port = port
            self._create_webhook_configurations(api, port, ca_pem, namespaces)

        kubeconfigs = {name: self._token_kubeconfig(name, token) for name, token in tokens.items()}
        cert_dir = self.workdir / "spark-operator-webhook-certs"
        cert_dir.mkdir(exist_ok=True)
        common = [f"--namespaces={','.join(namespaces)}", "--zap-log-level=info", "--zap-encoder=console"]
        probe = free_port()
        self.start_process("spark-operator-webhook", [
            binary, "webhook", "start", f"--kubeconfig={kubeconfigs['spark-operator-webhook']}", *common,
            f"--webhook-port={port}", f"--webhook-cert-dir={cert_dir}",
            f"--webhook-secret-name={SPARK_OPERATOR_WEBHOOK}", f"--webhook-secret-namespace={namespace}",
            f"--webhook-svc-name={svc}", f"--webhook-svc-namespace={svc_ns}",
            f"--mutating-webhook-name={SPARK_OPERATOR_WEBHOOK}",
            f"--validating-webhook-name={SPARK_OPERATOR_WEBHOOK}",
            f"--health-probe-bind-address=127.0.0.1:{probe}",
        ], ready=self._http_ready(f"http://127.0.0.1:{probe}/readyz"))
        # the apiserver reaches it, with the CA given: a TLS handshake against the webhook's port
        self._wait(self.processes[-1], self._tls_ready(port, self.workdir / "spark-operator-webhook-ca.crt"))

        spark_home = self._spark_home()
        conf_dir = self.workdir / "spark-conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "spark-defaults.conf").write_text("\n".join([
            f"spark.kubernetes.authenticate.submission.caCertFile {self.ca}",
            "spark.kubernetes.authenticate.submission.oauthTokenFile "
            f"{self.workdir / 'spark-operator-controller.token'}",
            "",
        ]))
        host, _, api_port = self.server.removeprefix("https://").rpartition(":")
        probe = free_port()
        self.start_process("spark-operator-controller", [
            binary, "controller", "start", f"--kubeconfig={kubeconfigs['spark-operator-controller']}",
            *common,
            f"--health-probe-bind-address=127.0.0.1:{probe}",
        ], env={"SPARK_HOME": str(spark_home), "SPARK_CONF_DIR": str(conf_dir),
                # spark-submit's JVM only submits: the C1 compiler and the serial collector start it
                # in about half the CPU time on this 2-core machine (the same pyspark, the same work)
                "SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto",
                "KUBECONFIG": str(kubeconfigs["spark-operator-controller"]),
                "KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": api_port,
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
           ready=self._http_ready(f"http://127.0.0.1:{probe}/readyz"))

    @staticmethod
    def _spark_home() -> Path:
        import importlib.util
        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise ControlPlaneError("pyspark is not installed: the Spark Operator runs its bin/spark-submit")
        home = Path(next(iter(spec.submodule_search_locations)))
        if not (home / "bin" / "spark-submit").exists():
            raise ControlPlaneError(f"no bin/spark-submit in {home}")
        return home

    @staticmethod
    def _http_ready(url: str) -> Callable[[], bool]:
        def ready() -> bool:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        return ready

    @staticmethod
    def _tls_ready(port: int, cafile: Path) -> Callable[[], bool]:
        def ready() -> bool:
            ctx = ssl.create_default_context(cafile=str(cafile))
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                with ctx.wrap_socket(sock, server_hostname="127.0.0.1"):
                    return True
        return ready

    @staticmethod
    def _ensure_namespace(core, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        except ApiException as e:
            if e.status != 409:
                raise

    def _apply_crds(self, api, paths: list[Path]) -> None:
        if not paths:
            raise ControlPlaneError("no Spark Operator CRDs found")
        self._create_crds(api, [yaml.safe_load(path.read_text()) for path in paths])

    def _create_crds(self, api, crds: list[dict]) -> None:
        """Create ``crds`` and wait until each is Established."""
        from kubernetes import client
        ext = client.ApiextensionsV1Api(api)
        names = []
        for crd in crds:
            ext.create_custom_resource_definition(crd)
            names.append(crd["metadata"]["name"])
        deadline = time.monotonic() + self.start_timeout
        for name in names:
            while True:
                got = ext.read_custom_resource_definition(name)
                conditions = {c.type: c.status for c in (got.status.conditions or [])}
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"CRD {name} not Established: {conditions}")
                time.sleep(0.2)

    def _create_webhook_configurations(self, api, port: int, ca_pem: bytes, namespaces: list[str]) -> None:
        """The chart's two webhook configurations, each webhook by ``url:`` rather than a Service."""
        import base64
        ca_bundle = base64.b64encode(ca_pem).decode()
        selector = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                          "values": namespaces}]}

        def hook(name: str, path: str, group: str, version: str, resource: str, operations: list[str],
                 **extra) -> dict:
            return {"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
                    "failurePolicy": "Fail", "timeoutSeconds": 10, "namespaceSelector": selector,
                    "clientConfig": {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle},
                    "rules": [{"apiGroups": [group], "apiVersions": [version], "resources": [resource],
                               "operations": operations}], **extra}

        g, v = "sparkoperator.k8s.io", "v1beta2"
        mutating = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": SPARK_OPERATOR_WEBHOOK}, "webhooks": [
                        hook("mutate--v1-pod.sparkoperator.k8s.io", "/mutate--v1-pod", "", "v1", "pods",
                             ["CREATE"], objectSelector={"matchLabels": {
                                 "sparkoperator.k8s.io/launched-by-spark-operator": "true"}}),
                        hook("mutate-sparkoperator-k8s-io-v1beta2-sparkapplication.sparkoperator.k8s.io",
                             "/mutate-sparkoperator-k8s-io-v1beta2-sparkapplication", g, v,
                             "sparkapplications", ["CREATE", "UPDATE"]),
                        hook("mutate-sparkoperator-k8s-io-v1beta2-scheduledsparkapplication.sparkoperator.k8s.io",
                             "/mutate-sparkoperator-k8s-io-v1beta2-scheduledsparkapplication", g, v,
                             "scheduledsparkapplications", ["CREATE", "UPDATE"]),
                        hook("mutate-sparkoperator-k8s-io-v1alpha1-sparkconnect.sparkoperator.k8s.io",
                             "/mutate-sparkoperator-k8s-io-v1alpha1-sparkconnect", g, "v1alpha1",
                             "sparkconnects", ["CREATE", "UPDATE"])]}
        validating = {"apiVersion": "admissionregistration.k8s.io/v1",
                      "kind": "ValidatingWebhookConfiguration",
                      "metadata": {"name": SPARK_OPERATOR_WEBHOOK}, "webhooks": [
                          hook("validate-sparkoperator-k8s-io-v1beta2-sparkapplication.sparkoperator.k8s.io",
                               "/validate-sparkoperator-k8s-io-v1beta2-sparkapplication", g, v,
                               "sparkapplications", ["CREATE", "UPDATE"]),
                          hook("validate-sparkoperator-k8s-io-v1beta2-scheduledsparkapplication"
                               ".sparkoperator.k8s.io",
                               "/validate-sparkoperator-k8s-io-v1beta2-scheduledsparkapplication", g, v,
                               "scheduledsparkapplications", ["CREATE", "UPDATE"]),
                          hook("validate-sparkoperator-k8s-io-v1alpha1-sparkconnect.sparkoperator.k8s.io",
                               "/validate-sparkoperator-k8s-io-v1alpha1-sparkconnect", g, "v1alpha1",
                               "sparkconnects", ["CREATE", "UPDATE"])]}
        from kubernetes import client
        adm = client.AdmissionregistrationV1Api(api)
        adm.create_mutating_webhook_configuration(mutating)
        adm.create_validating_webhook_configuration(validating)

    def _token_kubeconfig(self, user: str, token: str) -> Path:
        token_file = self._write(f"{user}.token", token)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": user,
            "clusters": [{"name": "local", "cluster": {"server": self.server,
                                                       "certificate-authority": str(self.ca)}}],
            "users": [{"name": user, "user": {"tokenFile": str(token_file)}}],
            "contexts": [{"name": user, "context": {"cluster": "local", "user": user}}],
        }
        return self._write(f"{user}.kubeconfig", yaml.safe_dump(config))

    def _spark_operator_rbac(self, api, namespace: str, namespaces: list[str]) -> dict[str, str]:
        """The chart's service accounts and RBAC (jobNamespaces = ``namespaces``); a token of each."""
        from kubernetes import client
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        g = "sparkoperator.k8s.io"

        def rule(groups, resources, verbs, names=None) -> dict:
            r = {"apiGroups": groups, "resources": resources, "verbs": verbs}
            if names:
                r["resourceNames"] = names
            return r

        events = rule([""], ["events"], ["create", "update", "patch"])
        controller_rules = [
            rule([""], ["pods"], ["get", "list", "watch", "create", "update", "delete"]),
            rule([""], ["configmaps"], ["get", "list", "watch", "create", "update", "patch"]),
            rule([""], ["services"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
            events,
            rule(["extensions", "networking.k8s.io"], ["ingresses"], ["get", "create", "update", "delete"]),
            # not in the chart: spark-submit of Spark 4.3 (the pyspark here; the operator's image has 4.0)
            # server-side-applies a NetworkPolicy per application, and is refused (403) without this
            rule(["networking.k8s.io"], ["networkpolicies"],
                 ["get", "list", "watch", "create", "update", "patch", "delete"]),
            rule([g], ["sparkapplications"], ["get", "list", "watch", "create", "delete"]),
            rule([g], ["scheduledsparkapplications", "sparkconnects"], ["get", "list", "watch"]),
            rule([g], ["sparkapplications/status", "sparkconnects/status",
                       "scheduledsparkapplications/status"], ["update"]),
            rule([g], ["sparkapplications/finalizers"], ["update"]),
            rule([g], ["scheduledsparkapplications/finalizers"], ["update"]),
            rule([g], ["sparkconnects/finalizers"], ["update"]),
        ]
        webhook_rules = [
            rule([""], ["resourcequotas"], ["list"]),
            rule([""], ["pods"], ["list", "watch"]),
            rule([g], ["sparkapplications", "scheduledsparkapplications"], ["get", "list", "watch"]),
        ]
        grants = {
            "spark-operator-controller": {
                "cluster": [rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["get"])],
                "own": controller_rules if namespace in namespaces else [events],
                "jobs": controller_rules,
            },
            "spark-operator-webhook": {
                "cluster": [
                    rule(["admissionregistration.k8s.io"],
                         ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
                         ["list", "watch"]),
                    rule(["admissionregistration.k8s.io"],
                         ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
                         ["get", "update"], [SPARK_OPERATOR_WEBHOOK]),
                ],
                "own": [rule([""], ["secrets"], ["create"]),
                        rule([""], ["secrets"], ["get", "update"], [SPARK_OPERATOR_WEBHOOK]),
                        *(webhook_rules if namespace in namespaces else [])],
                "jobs": webhook_rules,
            },
        }
        tokens = {}
        for name, grant in grants.items():
            core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name=name)))
            subjects = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
            rbac.create_cluster_role({"metadata": {"name": name}, "rules": grant["cluster"]})
            rbac.create_cluster_role_binding({"metadata": {"name": name}, "subjects": subjects, "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}})
            for ns in dict.fromkeys([namespace, *namespaces]):
                rules = grant["own"] if ns == namespace else grant["jobs"]
                rbac.create_namespaced_role(ns, {"metadata": {"name": name}, "rules": rules})
                rbac.create_namespaced_role_binding(ns, {"metadata": {"name": name}, "subjects": subjects,
                                                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                     "kind": "Role", "name": name}})
            request = core.create_namespaced_service_account_token(
                name, namespace, client.AuthenticationV1TokenRequest(
                    spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=2 * 24 * 3600)))
            tokens[name] = request.status.token
        return tokens
