"""Sensor that waits for a SparkApplication to reach a terminal state."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

from sparkapp import states
from sparkapp.client import get_client

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from sparkapp.client import SparkApplicationClient


class SparkApplicationFailed(AirflowException):
    """The SparkApplication ended in FAILED."""


class SparkApplicationSensor(BaseSensorOperator):
    """Wait until a SparkApplication is COMPLETED; fail when it is FAILED.

    Every other state, SUBMISSION_FAILED, FAILING and UNKNOWN included, can still recover under
    the application's restart policy, so the sensor keeps waiting through it.

    :param application_name: the application's name (templated), usually the submit task's XCom.
    :param namespace: its namespace (templated).
    :param backend: where it runs; see :data:`sparkapp.client.BACKENDS`.
    """

    template_fields: Sequence[str] = ("application_name", "namespace")

    def __init__(self, *, application_name: str, namespace: str = "default", backend: str = "local",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.application_name = application_name
        self.namespace = namespace
        self.backend = backend
        self._last_state: str | None = None

    @cached_property
    def client(self) -> SparkApplicationClient:
        return get_client(self.backend)

    def poke(self, context: Context) -> bool:
        application = self.client.get_application(self.application_name, self.namespace)
        state = states.application_state(application)
        if state != self._last_state:
            self.log.info("SparkApplication %s in namespace %s is %s",
                          self.application_name, self.namespace, state or "new")
            self._last_state = state
        if state in states.FAILURE_STATES:
            raise SparkApplicationFailed(
                f"SparkApplication {self.application_name} in namespace {self.namespace} {state}: "
                f"{states.error_message(application) or 'no error message recorded'}"
            )
        return state in states.SUCCESS_STATES
