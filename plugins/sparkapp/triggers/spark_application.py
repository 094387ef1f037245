"""Trigger that polls a SparkApplication from the triggerer until there is something to act on.

Polling only: deleting an application that missed a deadline and copying the driver log are done
by the sensor when it resumes, from the application the event carries (it may be gone by then: a
short ``timeToLiveSeconds``). Every deadline is measured from server timestamps on the application,
or an absolute ``timeout_at``, so a trigger rebuilt by a triggerer restart resumes with the same
deadlines; the verdict is the sensor's: :func:`sparkapp.states.waiting_verdict`. A user who marks
the deferred task failed or clears it kills the trigger: :meth:`SparkApplicationTrigger.on_kill`
deletes the application, as the sensor's ``on_kill`` does when it waits in a worker.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sparkapp import states
from sparkapp.client import ApplicationNotFound

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Consecutive polls that may fail with transient trouble (after their own retries) before the wait
#: ends with an error.
FAILED_POLLS_TOLERATED = 10
#: Seconds on_kill may take to delete the application (the triggerer bounds it at 30 by default).
ON_KILL_TIMEOUT_SECONDS = 20.0


def _transient(exc: BaseException) -> bool:
    # imported here: the DAG file imports this module through the sensor, and parsing it must not
    # import the Kubernetes provider
    from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import TRANSIENT_CONNECTION_ERRORS

    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    return isinstance(exc, (*TRANSIENT_CONNECTION_ERRORS, asyncio.TimeoutError, OSError))


class SparkApplicationTrigger(BaseTrigger):
    """Fire once the application is terminal, gone, past a deadline, or the sensor timed out.

    The event is ``{"verdict": ..., "state": ..., "application": <the object read>}`` (verdict
    ``terminal``, ``startup_timeout``, ``deadline`` or ``timeout``), ``{"verdict": "not_found"}``
    or ``{"verdict": "error", "message": ...}``.

    :param application_name: the application.
    :param namespace: its namespace (None: the connection's).
    :param kubernetes_conn_id: connection to the cluster.
    :param poll_interval: seconds between reads (one API read per interval).
    :param startup_timeout: seconds the current submission attempt may stay new or SUBMITTED.
    :param deadline: seconds from creation to a terminal state.
    :param timeout_at: ISO time at which the sensor's own ``timeout`` runs out (None: never).
    """

    def __init__(self, *, application_name: str, namespace: str | None, kubernetes_conn_id: str,
                 poll_interval: float, startup_timeout: float, deadline: float,
                 timeout_at: str | None = None) -> None:
        super().__init__()
        self.application_name = application_name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.startup_timeout = startup_timeout
        self.deadline = deadline
        self.timeout_at = timeout_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "application_name": self.application_name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "poll_interval": self.poll_interval,
                "startup_timeout": self.startup_timeout,
                "deadline": self.deadline,
                "timeout_at": self.timeout_at,
            },
        )

    def _hook(self):
        from sparkapp.hooks.kubernetes import AsyncSparkApplicationHook

        return AsyncSparkApplicationHook(conn_id=self.kubernetes_conn_id)

    def _timed_out(self) -> bool:
        return self.timeout_at is not None and datetime.now(timezone.utc) >= datetime.fromisoformat(
            self.timeout_at)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # the event is yielded outside the API client's context: a caller that takes one event and
        # never closes the generator (dag.test()) leaves no connection open inside it
        yield TriggerEvent(await self._wait())

    async def _wait(self) -> dict:
        """Poll until there is something to act on; the event's payload."""
        last_state, failed_polls = None, 0
        async with self._hook().applications(self.namespace) as applications:
            while True:
                try:
                    application = await applications.read(self.application_name)
                except ApplicationNotFound:
                    return {"verdict": "not_found"}
                except Exception as exc:  # the sensor turns it into a failure with this message
                    failed_polls += 1
                    if not _transient(exc) or failed_polls > FAILED_POLLS_TOLERATED:
                        return {"verdict": "error", "message": f"{type(exc).__name__}: {exc}"}
                    self.log.warning("Reading SparkApplication %s failed (%s: %s); polling on (%d of %d)",
                                     self.application_name, type(exc).__name__, exc, failed_polls,
                                     FAILED_POLLS_TOLERATED)
                    await asyncio.sleep(self.poll_interval)
                    continue
                failed_polls = 0
                state = states.application_state(application)
                if state != last_state:
                    self.log.info("SparkApplication %s is %s", self.application_name, state or "new")
                    last_state = state
                verdict = states.waiting_verdict(application, startup_timeout=self.startup_timeout,
                                                 deadline=self.deadline)
                if verdict is None and self._timed_out():
                    verdict = "timeout"
                if verdict is not None:
                    return {"verdict": verdict, "state": state, "application": application}
                await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The user killed the deferred task (marked it failed or success, or cleared it): delete the
        application so that its pods, GPUs included, are freed."""
        try:
            async with self._hook().applications(self.namespace) as applications:
                deleted = await asyncio.wait_for(applications.delete(self.application_name),
                                                 ON_KILL_TIMEOUT_SECONDS)
        except Exception:
            self.log.exception("Deleting SparkApplication %s after the task was killed failed",
                               self.application_name)
            return
        if deleted:
            self.log.info("Deleted SparkApplication %s: the task was killed", self.application_name)
