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
   Ready, and pods the scheduler binds to them turn Running (no container runs).

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
    def create(cls, common_name: str = "flight-delays-test-ca") -> CertificateAuthority:
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        name = _name(common_name)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    def issue(self, common_name: str, *, organization: str | None = None, server: bool = False,
              dns: Iterable[str] = (), ips: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """A leaf certificate and its key, PEM: a client one, or a serving one when ``server``."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (x509.CertificateBuilder().subject_name(_name(common_name, organization))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=2))
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
                 labels: dict | None = None) -> None:
        """A fake node that KWOK (``kwok=True``) runs pods on: it turns Ready, and its pods Running."""
        from kubernetes import client
        capacity = {"cpu": cpu, "memory": memory, "pods": pods}
        with self.api_client() as api:
            client.CoreV1Api(api).create_node(client.V1Node(
                metadata=client.V1ObjectMeta(name=name, annotations={KWOK_NODE_ANNOTATION: "fake"},
                                             labels={"type": "kwok", "kubernetes.io/hostname": name,
                                                     **(labels or {})}),
                status=client.V1NodeStatus(capacity=capacity, allocatable=capacity)))

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
        kubeconfig = self._kubeconfig("kwok-controller", "kwok-controller", "system:masters")
        stages = self.binaries["kwok"].parent / "stages.yaml"
        port = free_port()

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200

        self.start_process("kwok", [
            str(self.binaries["kwok"]), f"--kubeconfig={kubeconfig}", f"--config={stages}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1", "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{port}",
        ], ready=ready)
