"""Hook for Spark Operator SparkApplications, built on the cncf.kubernetes provider's ``KubernetesHook``.

I/O only: create, read and delete applications, read the driver pod and its log. Reads retry
transient API trouble (429 with ``Retry-After``, 5xx, connection resets) through the provider's
``generic_api_retry``. Create is never retried blindly: a lost answer is resolved by reading the
application back and comparing its spec hash.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import (
    TRANSIENT_CONNECTION_ERRORS,
    generic_api_retry,
)
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException
from urllib3.exceptions import HTTPError

from sparkapp.application import SPEC_HASH_ANNOTATION
from sparkapp.client import ApplicationAlreadyExists, ApplicationNotFound, SparkApplicationApiError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
PLURAL = "sparkapplications"
DRIVER_CONTAINER = "spark-kubernetes-driver"
#: Attempts at resolving a create whose answer was lost (read back, then create again if absent).
CREATE_ATTEMPTS = 3


def api_message(exc: ApiException) -> str:
    """The API server's own message from a Status body, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return body.get("message") or f"{exc.status} {exc.reason}"


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
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return self.create_custom_object(GROUP, VERSION, PLURAL, manifest, namespace)
            except ApiException as exc:
                if exc.status == 409:
                    raise ApplicationAlreadyExists(
                        f"SparkApplication {name} already exists in namespace {namespace}"
                    ) from None
                if exc.status != 429 and exc.status < 500:
                    raise self._fail(exc, "Creating", name, namespace) from None
                self.log.warning("Creating %s: HTTP %s (%s); reading it back", name, exc.status,
                                 api_message(exc))
            except (HTTPError, *TRANSIENT_CONNECTION_ERRORS) as exc:
                self.log.warning("Creating %s: no answer (%s); reading it back", name, exc)
            try:
                stored = self.get_application(name, namespace)
            except ApplicationNotFound:
                self.log.info("SparkApplication %s was not stored; creating it again (attempt %d of %d)",
                              name, attempt + 1, CREATE_ATTEMPTS)
                continue
            ours = meta.get("annotations", {}).get(SPEC_HASH_ANNOTATION)
            if stored["metadata"].get("annotations", {}).get(SPEC_HASH_ANNOTATION) == ours:
                self.log.info("SparkApplication %s was stored despite the lost answer", name)
                return stored
            raise ApplicationAlreadyExists(f"SparkApplication {name} already exists in namespace {namespace}")
        raise SparkApplicationApiError(
            f"Creating SparkApplication {name} in namespace {namespace} failed {CREATE_ATTEMPTS} times "
            "without an answer from the API server", status=None,
        )

    def get_application(self, name: str, namespace: str) -> dict:
        namespace = self.resolve_namespace(namespace)
        try:
            return self.get_custom_object(GROUP, VERSION, PLURAL, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise ApplicationNotFound(
                    f"SparkApplication {name} not found in namespace {namespace}"
                ) from None
            raise self._fail(exc, "Reading", name, namespace) from None

    def delete_application(self, name: str, namespace: str) -> bool:
        """Delete the application (its pods go with it); False if it was already gone."""
        namespace = self.resolve_namespace(namespace)
        try:
            self.delete_custom_object(GROUP, VERSION, PLURAL, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise self._fail(exc, "Deleting", name, namespace) from None
        return True

    def read_driver_log(self, name: str, namespace: str, tail_lines: int) -> list[str] | None:
        """The last ``tail_lines`` lines of the driver container, or None once the pod is gone."""
        namespace = self.resolve_namespace(namespace)
        try:
            # Unparsed: the client turns a text/plain body into the repr of its bytes.
            response = self.core_v1_client.read_namespaced_pod_log(
                name=f"{name}-driver", namespace=namespace, container=DRIVER_CONTAINER,
                tail_lines=tail_lines, _preload_content=False,
            )
            text = response.data.decode("utf-8", errors="replace")
        except ApiException as exc:
            if exc.status in (400, 404):  # pod gone, or container not started yet
                return None
            raise self._fail(exc, "Reading the driver log of", name, namespace) from None
        return text.splitlines()

    def driver_pending_reason(self, name: str, namespace: str) -> str | None:
        """Why the driver pod is not running yet (scheduling or image trouble), if it says."""
        namespace = self.resolve_namespace(namespace)
        try:
            pod: Any = self.core_v1_client.read_namespaced_pod(name=f"{name}-driver", namespace=namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._fail(exc, "Reading the driver pod of", name, namespace) from None
        for condition in pod.status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                return f"{condition.reason}: {condition.message}"
        for container in pod.status.container_statuses or []:
            waiting = container.state.waiting if container.state else None
            if waiting and waiting.reason:
                return f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
        return None

    def check_access(self, namespace: str | None) -> str:
        """List (at most one) SparkApplication in ``namespace``: the connection, the API server, the
        CRD and the ``list`` permission all answer at once."""
        namespace = self.resolve_namespace(namespace)
        try:
            self.custom_object_client.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                                    limit=1)
        except ApiException as exc:
            raise SparkApplicationApiError(
                f"Listing SparkApplications in namespace {namespace} failed with HTTP {exc.status}: "
                f"{api_message(exc)}", status=exc.status) from None
        except (*TRANSIENT_CONNECTION_ERRORS, HTTPError) as exc:
            raise SparkApplicationApiError(f"The Kubernetes API server did not answer ({type(exc).__name__}: "
                                           f"{exc})", status=None) from None
        return f"Kubernetes API {self.api_client.configuration.host}, namespace {namespace}"


class AsyncSparkApplicationHook(AsyncKubernetesHook):
    """Read SparkApplications from async code (the triggerer).

    One API client serves every read of :meth:`reader`: building a client costs ~20 ms of
    blocking work (an SSL context), which would stall a triggerer's event loop on every poll.

    :param kubernetes_conn_id: Airflow connection to the cluster.
    """

    @contextlib.asynccontextmanager
    async def reader(self, namespace: str | None) -> AsyncIterator[Callable[[str], Awaitable[dict]]]:
        """Yield ``read(name)``, which returns the application or raises :class:`ApplicationNotFound`.

        Reads retry transient API trouble like the sync hook's.
        """
        namespace = namespace or await self._get_field("namespace") or self.DEFAULT_NAMESPACE
        async with self.get_conn() as connection:
            api = async_client.CustomObjectsApi(connection)

            @generic_api_retry
            async def read(name: str) -> dict:
                try:
                    return await api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                except AsyncApiException as exc:
                    if exc.status == 404:
                        raise ApplicationNotFound(
                            f"SparkApplication {name} not found in namespace {namespace}"
                        ) from None
                    raise

            yield read
