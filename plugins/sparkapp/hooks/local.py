"""The embedded backend: runs a SparkApplication manifest with local ``spark-submit``.

It translates what matters of the manifest (main file, arguments, sparkConf, deps, driver and
executor resources) into a ``spark-submit`` call through the apache-spark provider's
``SparkSubmitHook``; the master comes from the hook's connection (``local[2]`` on one machine).
``spark-submit`` in client mode blocks until the job ends, so :meth:`create_application` returns a
terminal application; its object, with a ``status`` shaped like the Spark Operator's, is kept as
JSON under a state directory so that the sensor reads it exactly as it reads the API server.

Not translated, because one machine has no use for them: image, service account, pod labels, the
restart policy (Airflow's task retries play that part here), and what only places and sizes pods
on a cluster: memory overhead, GPUs (``gpu``), node selectors, tolerations, priority classes and
the batch scheduler (``batchScheduler``/``batchSchedulerOptions``). ``deps.jars`` is translated
(``--jars``), so a profile's jars reach local ``spark-submit`` too.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkapp import s3a, states
from sparkapp.application.image import IMAGE_CONTRACT
from sparkapp.client import ApplicationNotFound

if TYPE_CHECKING:
    from sparkapp.application.image import ImageContract

#: The project root: what the job image holds under its ``app_root`` (plugins/sparkapp/hooks/local.py).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
STATE_DIR_ENV = "SPARKAPP_LOCAL_STATE_DIR"


def default_state_dir() -> Path:
    """Directory of application records: ``$SPARKAPP_LOCAL_STATE_DIR`` or ``.local/spark-applications``."""
    return Path(os.environ.get(STATE_DIR_ENV, PROJECT_ROOT / ".local" / "spark-applications"))


def local_path(uri: str, *, project_root: Path = PROJECT_ROOT,
               image_contract: ImageContract = IMAGE_CONTRACT) -> str:
    """Map a ``local://`` path inside the job image to the same file in the project checkout.

    Other URIs (``s3a://``, ``https://``, plain paths) are returned unchanged.

    :param image_contract: the job image the manifest points into (where it holds the project).
    """
    prefix = image_contract.local_uri("")
    if uri.startswith(prefix):
        return str(project_root / uri[len(prefix):])
    if uri.startswith("local://"):
        raise ValueError(f"{uri!r} is outside the job image's project root {image_contract.app_root}")
    return uri


def spark_submit_arguments(manifest: dict, *, project_root: Path = PROJECT_ROOT,
                           image_contract: ImageContract = IMAGE_CONTRACT) -> dict[str, Any]:
    """Translate a SparkApplication manifest into ``SparkSubmitHook`` keyword arguments.

    The returned ``application`` is the main file to submit; everything else is a hook argument.
    """
    spec = manifest["spec"]
    driver, executor, deps = spec.get("driver", {}), spec.get("executor", {}), spec.get("deps", {})
    conf = dict(spec.get("sparkConf", {}))
    if "cores" in driver:
        conf["spark.driver.cores"] = str(driver["cores"])

    def joined(key: str) -> str | None:
        paths = [local_path(p, project_root=project_root, image_contract=image_contract)
                 for p in deps.get(key, [])]
        return ",".join(paths) or None

    return {
        "application": local_path(spec["mainApplicationFile"], project_root=project_root,
                                  image_contract=image_contract),
        "name": manifest["metadata"]["name"],
        "application_args": list(spec.get("arguments", [])),
        "conf": conf,
        "driver_memory": driver.get("memory"),
        "executor_cores": executor.get("cores"),
        "executor_memory": executor.get("memory"),
        "num_executors": executor.get("instances"),
        "py_files": joined("pyFiles"),
        "jars": joined("jars"),
        "files": joined("files"),
        "packages": ",".join(deps.get("packages", [])) or None,
    }


class SparkSubmitInterrupted(RuntimeError):
    """spark-submit was stopped by a signal while the application ran."""


#: Signals that stop a process on purpose; shells report them as 128 + the signal's number.
_STOP_SIGNALS = {2, 9, 15}


def stopping_signal(returncode: int | None) -> int | None:
    """The signal that stopped spark-submit, from its exit status, or None for an ordinary exit."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    return returncode - 128 if returncode - 128 in _STOP_SIGNALS else None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalSparkApplicationClient:
    """Runs SparkApplications with local ``spark-submit`` and keeps their objects as JSON files.

    :param spark_conn_id: Airflow connection of the Spark master.
    :param state_dir: where application objects are kept (one file per namespace and name).
    :param project_root: the checkout that ``local://`` paths of the job image map to.
    :param image_contract: the job image the manifests point into (its project root and ``PYTHONPATH``).
    :param object_store_conn_id: Airflow connection (type ``aws``) of the object store that a job
        rendered for S3A reads (:func:`sparkapp.s3a.uses_s3a`): its keys and endpoint are given to
        ``spark-submit`` as the environment a pod's Secret gives on a cluster, with the S3A jars
        (:func:`sparkapp.s3a.local_jars`) that the job image bakes in.
    """

    def __init__(self, *, spark_conn_id: str = "spark_default", state_dir: Path | None = None,
                 project_root: Path = PROJECT_ROOT, image_contract: ImageContract = IMAGE_CONTRACT,
                 object_store_conn_id: str = "aws_default") -> None:
        self.spark_conn_id = spark_conn_id
        self.object_store_conn_id = object_store_conn_id
        self.state_dir = state_dir or default_state_dir()
        self.project_root = project_root
        self.image_contract = image_contract

    def _record_path(self, name: str, namespace: str) -> Path:
        return self.state_dir / namespace / f"{name}.json"

    def _save(self, application: dict) -> None:
        meta = application["metadata"]
        path = self._record_path(meta["name"], meta["namespace"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".", suffix=".tmp", delete=False) as f:
            json.dump(application, f, indent=2)
        os.replace(f.name, path)

    def get_application(self, name: str, namespace: str) -> dict:
        path = self._record_path(name, namespace)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ApplicationNotFound(
                f"SparkApplication {name} not found in namespace {namespace} (looked in {path})"
            ) from None

    def resolve_namespace(self, namespace: str | None) -> str:
        return namespace or "default"

    def delete_application(self, name: str, namespace: str) -> bool:
        try:
            self._record_path(name, namespace).unlink()
        except FileNotFoundError:
            return False
        return True

    def read_driver_log(self, application: dict, tail_lines: int) -> list[str] | None:
        # spark-submit ran in client mode inside the submit task: its log is that task's log.
        return None

    def pending_reason(self, application: dict) -> str | None:
        return None

    def check_access(self, namespace: str | None) -> str:
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(self.spark_conn_id)
        if not connection.host:
            raise ValueError(f"connection {self.spark_conn_id!r} names no Spark master (its host is empty)")
        return f"Spark master {connection.host} (connection {self.spark_conn_id})"

    def create_application(self, manifest: dict) -> dict:
        """Run the application to its end and return its object with the final status.

        A rerun of the same name replaces the earlier record, as a resubmission does on a cluster.
        """
        from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

        submit_args = spark_submit_arguments(manifest, project_root=self.project_root,
                                             image_contract=self.image_contract)
        application = submit_args.pop("application")
        metadata = {**manifest["metadata"], "creationTimestamp": _now()}
        application_object = {**manifest, "metadata": metadata, "status": {
            "applicationState": {"state": states.SUBMITTED},
            "submissionAttempts": 1,
            "lastSubmissionAttemptTime": _now(),
        }}
        self._save(application_object)
        environment = self._environment()
        if s3a.uses_s3a(submit_args["conf"]):
            submit_args["jars"] = ",".join(filter(None, [submit_args["jars"], *map(str, s3a.local_jars())]))
            environment.update(s3a.environment_from_connection(self.object_store_conn_id))
        hook = SparkSubmitHook(conn_id=self.spark_conn_id, env_vars=environment, **submit_args)
        interrupted = None
        try:
            hook.submit(application)
        except Exception as exc:  # the hook raises AirflowException with spark-submit's exit code
            final = {"state": states.FAILED, "errorMessage": str(exc)}
            interrupted = stopping_signal(getattr(getattr(hook, "_submit_sp", None), "returncode", None))
        else:
            final = {"state": states.COMPLETED}
        application_object["status"].update(applicationState=final, terminationTime=_now())
        self._save(application_object)
        if interrupted is not None:
            # Not the application's failure: the task is being stopped (Ctrl-C, a killed worker). The
            # task must fail too, so that its retry submits the application again (it replaces the
            # FAILED record) instead of a sensor waiting on a job that will never run.
            raise SparkSubmitInterrupted(
                f"spark-submit of {metadata['name']} was stopped by signal {interrupted}; "
                "the application is recorded FAILED and a retry of the task submits it again"
            )
        return application_object

    def _environment(self) -> dict[str, str]:
        # The driver and its Python workers must use this interpreter and find the project's
        # packages, as the job image's PYTHONPATH does; Spark must not bind to a public address.
        folders = [str((self.project_root / folder).resolve()) for folder in self.image_contract.python_path]
        python_path = os.pathsep.join(filter(None, [*folders, os.environ.get("PYTHONPATH")]))
        return {
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
            "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
            "PYTHONPATH": python_path,
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        }
