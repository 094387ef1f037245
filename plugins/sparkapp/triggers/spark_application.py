"""Trigger that polls a SparkApplication from the triggerer until there is something to act on.

Async polling only, no side effects: deleting an application that missed a deadline and copying
the driver log are done by the sensor when it resumes. Every deadline is measured from the
application's ``creationTimestamp`` (server time), so a trigger restarted by a triggerer restart
resumes with the same deadlines.
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

#: States of an application that has not started (see the sensor).
STARTUP_STATES = frozenset({states.NEW, states.SUBMITTED})


def age_seconds(application: dict, now: datetime | None = None) -> float:
    """Seconds since the application's ``creationTimestamp`` (0 when it has none)."""
    created = application.get("metadata", {}).get("creationTimestamp")
    if not created:
        return 0.0
    started = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return ((now or datetime.now(timezone.utc)) - started).total_seconds()


def waiting_verdict(application: dict, *, startup_timeout: float, deadline: float) -> str | None:
    """What ends the wait: "terminal", "startup_timeout", "deadline", or None to keep waiting."""
    state = states.application_state(application)
    if state in states.TERMINAL_STATES:
        return "terminal"
    age = age_seconds(application)
    if state in STARTUP_STATES and age > startup_timeout:
        return "startup_timeout"
    if age > deadline:
        return "deadline"
    return None


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
        from sparkapp.hooks.spark_application import AsyncSparkApplicationHook

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
                verdict = waiting_verdict(application, startup_timeout=self.startup_timeout,
                                          deadline=self.deadline)
                if verdict is not None:
                    yield TriggerEvent({"verdict": verdict, "state": state})
                    return
                await asyncio.sleep(self.poll_interval)
