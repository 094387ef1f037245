"""Trigger that polls a SparkApplication from the triggerer until there is something to act on.

Async polling only, no side effects: deleting an application that missed a deadline and copying
the driver log are done by the sensor when it resumes. Every deadline is measured from the
application's ``creationTimestamp`` (server time), so a trigger restarted by a triggerer restart
resumes with the same deadlines. The verdict is the sensor's: :func:`sparkapp.states.waiting_verdict`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sparkapp import states
from sparkapp.client import ApplicationNotFound

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

class SparkApplicationTrigger(BaseTrigger):
    """Fire once the application is terminal, gone, or past a deadline.

    :param application_name: the application.
    :param namespace: its namespace (None: the connection's).
    :param kubernetes_conn_id: connection to the cluster.
    :param poll_interval: seconds between reads (one API read per interval).
    :param startup_timeout: seconds it may stay new or SUBMITTED.
    :param deadline: seconds from creation to a terminal state.
    """

    def __init__(self, *, application_name: str, namespace: str | None, kubernetes_conn_id: str,
                 poll_interval: float, startup_timeout: float, deadline: float) -> None:
        super().__init__()
        self.application_name = application_name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.startup_timeout = startup_timeout
        self.deadline = deadline

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
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from sparkapp.hooks.kubernetes import AsyncSparkApplicationHook

        hook = AsyncSparkApplicationHook(conn_id=self.kubernetes_conn_id)
        last_state = None
        async with hook.reader(self.namespace) as read:
            while True:
                try:
                    application = await read(self.application_name)
                except ApplicationNotFound:
                    yield TriggerEvent({"verdict": "not_found"})
                    return
                except Exception as exc:  # the sensor turns it into a failure with this message
                    yield TriggerEvent({"verdict": "error", "message": f"{type(exc).__name__}: {exc}"})
                    return
                state = states.application_state(application)
                if state != last_state:
                    self.log.info("SparkApplication %s is %s", self.application_name, state or "new")
                    last_state = state
                verdict = states.waiting_verdict(application, startup_timeout=self.startup_timeout,
                                          deadline=self.deadline)
                if verdict is not None:
                    yield TriggerEvent({"verdict": verdict, "state": state})
                    return
                await asyncio.sleep(self.poll_interval)
