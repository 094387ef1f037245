"""Hook for Spark Operator SparkApplications, built on the cncf.kubernetes provider's ``KubernetesHook``.

I/O only: create, read and delete applications, read the driver pod and its log. Every request has
a timeout (:data:`REQUEST_TIMEOUT`), so a half-open connection fails instead of blocking a task.
Reads and deletes retry transient API trouble (429 with ``Retry-After``, 5xx, connection resets)
through the provider's ``generic_api_retry``. Create is never retried blindly: after a 5xx or a lost
answer the application is read back (ours if its spec hash is ours), and only when it was not
stored is it created again, with exponential backoff or the server's ``Retry-After``, for up to
:data:`CREATE_RETRY_SECONDS` (a webhook being rolled out answers 500 for a while; a quota that has
not counted SparkApplications yet answers 403 "status unknown for quota" until its recount). Deletion is in
the foreground: the application stays, with a ``deletionTimestamp``, until the garbage collector
has removed its driver pod, UI service and ConfigMaps, so a new application of the same name never
meets the old one's.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import (
    API_RETRY_WAIT_MAX,
    API_RETRY_WAIT_MIN,
    TRANSIENT_CONNECTION_ERRORS,
    generic_api_retry,
)
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException
from urllib3.exceptions import HTTPError

from sparkapp.application import SPEC_HASH_ANNOTATION
from sparkapp.client import ApplicationAlreadyExists, ApplicationNotFound, SparkApplicationApiError
from sparkapp.states import driver_pod_name, executors_stuck, pending_executors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
PLURAL = "sparkapplications"
DRIVER_CONTAINER = "spark-kubernetes-driver"
#: (connect, read) seconds of every request the hooks make.
REQUEST_TIMEOUT = (10.0, 60.0)
#: How long create keeps trying while the API server answers 429/5xx or nothing at all.
CREATE_RETRY_SECONDS = 180.0
#: Backoff between creates (doubling from the first, capped at the second), as the provider's
#: ``[workers] api_retry_wait_min`` / ``api_retry_wait_max``.
CREATE_RETRY_WAIT = (API_RETRY_WAIT_MIN, API_RETRY_WAIT_MAX)
#: The longest ``Retry-After`` honoured.
MAX_RETRY_AFTER_SECONDS = 60.0
#: The quota admission's refusal while the quota controller has not counted a new resource yet (a
#: quota made before the Spark Operator's CRD was discovered): it passes at the next recount.
QUOTA_NOT_COUNTED = "status unknown for quota"
#: Dependents (driver pod, UI service, ConfigMaps) go before the application does.
DELETE_PROPAGATION = "Foreground"


def api_message(exc: ApiException) -> str:
    """The API server's own message from a Status body, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return (body.get("message") if isinstance(body, dict) else None) or f"{exc.status} {exc.reason}"


def retry_after(exc: ApiException) -> float | None:
    """The seconds the server asked us to wait (``Retry-After``, or the Status' ``retryAfterSeconds``)."""
    header = (exc.headers or {}).get("Retry-After")
    seconds: float | None = None
    if header is not None:
        with contextlib.suppress(ValueError):
            seconds = float(header)
    if seconds is None:
        with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
            seconds = float(json.loads(exc.body or "{}")["details"]["retryAfterSeconds"])
    return None if seconds is None else min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class SparkApplicationHook(KubernetesHook):
    """Create, read and delete SparkApplications; read their driver pods.

    :param kubernetes_conn_id: Airflow connection to the cluster (``kubernetes`` type); its
        ``namespace`` extra is the default namespace.
    """

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = "kubernetes_default"
    hook_name = "Spark Operator SparkApplications"

    def resolve_namespace(self, namespace: str | None) -> str:
        """The task's namespace, else the connection's, else ``default``."""
        return namespace or self.get_namespace() or self.DEFAULT_NAMESPACE

    def _fail(self, exc: ApiException, action: str, name: str, namespace: str) -> SparkApplicationApiError:
        return SparkApplicationApiError(
            f"{action} SparkApplication {name} in namespace {namespace} failed with HTTP {exc.status}: "
            f"{api_message(exc)}",
            status=exc.status,
        )

    def create_application(self, manifest: dict) -> dict:
        meta = manifest["metadata"]
        name, namespace = meta["name"], self.resolve_namespace(meta.get("namespace"))
        started, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            wait: float | None = None
            try:
                return self.custom_object_client.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, manifest, _request_timeout=REQUEST_TIMEOUT)
            except ApiException as exc:
                if exc.status == 409:
                    raise ApplicationAlreadyExists(
                        f"SparkApplication {name} already exists in namespace {namespace}"
                    ) from None
                not_counted = exc.status == 403 and QUOTA_NOT_COUNTED in api_message(exc)
                if exc.status != 429 and exc.status < 500 and not not_counted:
                    raise self._fail(exc, "Creating", name, namespace) from None
                last, last_status = f"HTTP {exc.status}: {api_message(exc)}", exc.status
                wait = retry_after(exc)
            except (HTTPError, *TRANSIENT_CONNECTION_ERRORS) as exc:
                last, last_status = f"no answer ({type(exc).__name__}: {exc})", None
            # 429 and 403 are refused before anything is written; after a 5xx or no answer it may be stored
            stored = None if last_status in (403, 429) else self._stored_copy(manifest, namespace)
            if stored is not None:
                self.log.info("SparkApplication %s was stored despite the failed answer (%s)", name, last)
                return stored
            elapsed = time.monotonic() - started
            if wait is None:
                wait = min(CREATE_RETRY_WAIT[1], CREATE_RETRY_WAIT[0] * 2 ** (attempts - 1))
            if elapsed + wait > CREATE_RETRY_SECONDS:
                raise SparkApplicationApiError(
                    f"Creating SparkApplication {name} in namespace {namespace} failed {attempts} "
                    f"time(s) over {elapsed:.0f} s; the API server's last answer: {last}",
                    status=last_status)
            self.log.warning("Creating SparkApplication %s: %s; it was not stored, trying again in %.1f s",
                             name, last, wait)
            time.sleep(wait)

    def _stored_copy(self, manifest: dict, namespace: str) -> dict | None:
        """After a failed create: the stored application if it is ours, None if there is none (or the
        read fails too); raise :class:`ApplicationAlreadyExists` when another spec holds the name."""
        name = manifest["metadata"]["name"]
        try:
            stored = self.get_application(name, namespace)
        except ApplicationNotFound:
            return None
        except SparkApplicationApiError as exc:
            self.log.warning("Reading %s back failed too (%s)", name, exc)
            return None
        ours = manifest["metadata"].get("annotations", {}).get(SPEC_HASH_ANNOTATION)
        if stored["metadata"].get("annotations", {}).get(SPEC_HASH_ANNOTATION) == ours:
            return stored
        raise ApplicationAlreadyExists(f"SparkApplication {name} already exists in namespace {namespace}")

    def get_application(self, name: str, namespace: str) -> dict:
        namespace = self.resolve_namespace(namespace)
        try:
            return self._get(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise ApplicationNotFound(
                    f"SparkApplication {name} not found in namespace {namespace}"
                ) from None
            raise self._fail(exc, "Reading", name, namespace) from None
        except (HTTPError, *TRANSIENT_CONNECTION_ERRORS) as exc:
            raise SparkApplicationApiError(
                f"Reading SparkApplication {name} in namespace {namespace} got no answer from the API "
                f"server ({type(exc).__name__}: {exc})", status=None) from None

    @generic_api_retry
    def _get(self, name: str, namespace: str) -> dict:
        return self.custom_object_client.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT)

    def delete_application(self, name: str, namespace: str) -> bool:
        """Request the application's deletion, in the foreground; False if it was already gone.

        It is gone once the garbage collector has removed its dependents; :meth:`get_application`
        shows ``metadata.deletionTimestamp`` until then.
        """
        namespace = self.resolve_namespace(namespace)
        try:
            self._delete(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self._fail(exc, "Deleting", name, namespace) from None
        except (HTTPError, *TRANSIENT_CONNECTION_ERRORS) as exc:
            raise SparkApplicationApiError(
                f"Deleting SparkApplication {name} in namespace {namespace} got no answer from the API "
                f"server ({type(exc).__name__}: {exc})", status=None) from None
        return True

    @generic_api_retry
    def _delete(self, name: str, namespace: str) -> None:
        self.custom_object_client.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, propagation_policy=DELETE_PROPAGATION,
            _request_timeout=REQUEST_TIMEOUT)

    def read_driver_log(self, application: dict, tail_lines: int) -> list[str] | None:
        """The last ``tail_lines`` lines of the driver container, or None where there is no driver
        pod (none recorded yet, or gone) or its container has not started."""
        pod, namespace = driver_pod_name(application), self.resolve_namespace(
            application["metadata"].get("namespace"))
        if pod is None:
            return None
        try:
            text = self._pod_log(pod, namespace, tail_lines)
        except ApiException as exc:
            if exc.status in (400, 404):  # pod gone, or container not started yet
                return None
            raise self._fail(exc, "Reading the driver log of", application["metadata"]["name"],
                             namespace) from None
        except (HTTPError, *TRANSIENT_CONNECTION_ERRORS) as exc:
            raise SparkApplicationApiError(
                f"Reading the driver log of SparkApplication {application['metadata']['name']} got no "
                f"answer ({type(exc).__name__}: {exc})", status=None) from None
        return text.splitlines()

    @generic_api_retry
    def _pod_log(self, pod: str, namespace: str, tail_lines: int) -> str:
        # Unparsed: the client turns a text/plain body into the repr of its bytes.
        response = self.core_v1_client.read_namespaced_pod_log(
            name=pod, namespace=namespace, container=DRIVER_CONTAINER, tail_lines=tail_lines,
            _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        return response.data.decode("utf-8", errors="replace")

    def pending_reason(self, application: dict) -> str | None:
        """Why the driver pod, or once it runs the first pending executor pod, is not running yet
        (scheduling or image trouble), if it says; the pod named in the application's status."""
        executors = pending_executors(application) if executors_stuck(application) else []
        pod_name = executors[0] if executors else driver_pod_name(application)
        namespace = self.resolve_namespace(application["metadata"].get("namespace"))
        if pod_name is None:
            return None
        try:
            pod: Any = self._pod(pod_name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._fail(exc, f"Reading pod {pod_name} of", application["metadata"]["name"],
                             namespace) from None
        except (HTTPError, *TRANSIENT_CONNECTION_ERRORS) as exc:
            raise SparkApplicationApiError(
                f"Reading pod {pod_name} got no answer ({type(exc).__name__}: {exc})", status=None) from None
        prefix = f"executor {pod_name}: " if executors else ""
        for condition in pod.status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                return f"{prefix}{condition.reason}: {condition.message}"
        for container in pod.status.container_statuses or []:
            waiting = container.state.waiting if container.state else None
            if waiting and waiting.reason:
                return f"{prefix}{waiting.reason}: {waiting.message or ''}".rstrip(": ")
        return None

    @generic_api_retry
    def _pod(self, name: str, namespace: str) -> Any:
        return self.core_v1_client.read_namespaced_pod(name=name, namespace=namespace,
                                                       _request_timeout=REQUEST_TIMEOUT)

    def check_access(self, namespace: str | None) -> str:
        """List (at most one) SparkApplication in ``namespace``: the connection, the API server, the
        CRD and the ``list`` permission all answer at once."""
        namespace = self.resolve_namespace(namespace)
        try:
            self.custom_object_client.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                                    limit=1, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise SparkApplicationApiError(
                f"Listing SparkApplications in namespace {namespace} failed with HTTP {exc.status}: "
                f"{api_message(exc)}", status=exc.status) from None
        except (*TRANSIENT_CONNECTION_ERRORS, HTTPError) as exc:
            raise SparkApplicationApiError(f"The Kubernetes API server did not answer ({type(exc).__name__}: "
                                           f"{exc})", status=None) from None
        return f"Kubernetes API {self.api_client.configuration.host}, namespace {namespace}"


class AsyncApplications:
    """Reads and deletes of one namespace's SparkApplications over one async API client."""

    def __init__(self, api: async_client.CustomObjectsApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    @generic_api_retry
    async def read(self, name: str) -> dict:
        """The application, without ``managedFields``; raise :class:`ApplicationNotFound`."""
        try:
            application = await self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT[1])
        except AsyncApiException as exc:
            if exc.status == 404:
                raise ApplicationNotFound(
                    f"SparkApplication {name} not found in namespace {self.namespace}"
                ) from None
            raise
        application.get("metadata", {}).pop("managedFields", None)
        return application

    @generic_api_retry
    async def delete(self, name: str) -> bool:
        """Request the application's deletion in the foreground; False if it was already gone."""
        try:
            await self.api.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, propagation_policy=DELETE_PROPAGATION,
                _request_timeout=REQUEST_TIMEOUT[1])
        except AsyncApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


class AsyncSparkApplicationHook(AsyncKubernetesHook):
    """Read and delete SparkApplications from async code (the triggerer).

    One API client serves every request of :meth:`applications`: building a client costs ~20 ms of
    blocking work (an SSL context), which would stall a triggerer's event loop on every poll.

    :param kubernetes_conn_id: Airflow connection to the cluster.
    """

    @contextlib.asynccontextmanager
    async def applications(self, namespace: str | None) -> AsyncIterator[AsyncApplications]:
        """Yield :class:`AsyncApplications` of ``namespace`` (None: the connection's, else ``default``)."""
        namespace = namespace or await self._get_field("namespace") or self.DEFAULT_NAMESPACE
        async with self.get_conn() as connection:
            yield AsyncApplications(async_client.CustomObjectsApi(connection), namespace)
