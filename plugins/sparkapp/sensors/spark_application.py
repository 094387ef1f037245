"""Sensor that waits for a SparkApplication to reach a terminal state, within two deadlines."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from sparkapp import states
from sparkapp.backends import get_client, resolve_backend
from sparkapp.client import ApplicationNotFound, SparkApplicationApiError
from sparkapp.cost import application_cost
from sparkapp.links import SparkHistoryLink, SparkUiLink, spark_history_url, spark_ui_url
from sparkapp.triggers.spark_application import SparkApplicationTrigger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from sparkapp.client import SparkApplicationClient

#: XCom key of the application's cost inputs (:class:`sparkapp.cost.ApplicationCost`), pushed at the end.
COST_XCOM_KEY = "cost"
#: Said when pods were refused by Pod Security: the Spark Operator's mutating webhook adds the
#: security contexts, volumes and tolerations of the spec to the pods; without it they are bare.
WEBHOOK_HINT = ("the pods lack what the Spark Operator's mutating webhook adds (security contexts, "
                "volumes, tolerations): is its webhook running (Helm value webhook.enable=true) and does "
                "its MutatingWebhookConfiguration select this namespace?")


def failure_reason(application: dict) -> str:
    """The operator's ``errorMessage``, with :data:`WEBHOOK_HINT` where Pod Security refused the pods."""
    message = states.error_message(application) or "no error message recorded"
    if "violates PodSecurity" in message:
        return f"{message} ({WEBHOOK_HINT})"
    return message


class SparkApplicationFailed(AirflowException):
    """The SparkApplication failed, vanished, or missed a deadline."""


class SparkApplicationSensor(BaseSensorOperator):
    """Wait until a SparkApplication is COMPLETED; fail when it is FAILED, gone, or too late.

    Every other state, SUBMISSION_FAILED, FAILING, PENDING_RERUN and UNKNOWN included, can still
    recover under the application's restart policy, so the sensor waits through it, logging each
    state once when entered. Deferrable by default: on Kubernetes the wait runs in the triggerer
    (:class:`~sparkapp.triggers.spark_application.SparkApplicationTrigger`), holding no worker slot.
    Two deadlines: an application whose current submission attempt has not started after
    ``startup_timeout`` seconds (:func:`sparkapp.states.attempt_seconds`: a rerun after a driver
    failure gets its own), or not finished ``deadline`` seconds after its creation, is deleted and
    the task fails with the reason (the driver pod's, where it gives one). The sensor's ``timeout``
    holds when deferred too (the application is deleted and the task fails without retry). The
    last ``log_tail_lines`` lines of the driver log are copied into the task log at the end, with
    the application's cost inputs (wall time, core- and GPU-seconds: :mod:`sparkapp.cost`), which
    are also pushed to XCom (key ``cost``); a log that cannot be read is a warning, not a failure.
    The task page links to the Spark UI while the application runs and to its Spark
    History Server page (``$SPARK_HISTORY_SERVER_URL``) once it ended.

    :param application_name: the application's name (templated), usually the submit task's XCom.
    :param namespace: its namespace (templated); None takes the connection's.
    :param backend: where it runs, one of :data:`sparkapp.backends.BACKENDS`; None reads
        ``$SPARKAPP_BACKEND`` when the task runs (default ``local``).
    :param kubernetes_conn_id: connection to the cluster, for the Kubernetes backend.
    :param startup_timeout: seconds a submission attempt may stay new or SUBMITTED.
    :param deadline: seconds an application may take from creation to a terminal state.
    :param log_tail_lines: driver log lines copied into the task log.
    :param deferrable: wait in the triggerer (Kubernetes backend), holding no worker slot.
    """

    template_fields: Sequence[str] = ("application_name", "namespace")
    operator_extra_links = (SparkUiLink(), SparkHistoryLink())

    def __init__(self, *, application_name: str, namespace: str | None = None, backend: str | None = None,
                 kubernetes_conn_id: str = "kubernetes_default", startup_timeout: float = 15 * 60,
                 deadline: float = 4 * 60 * 60, log_tail_lines: int = 50, deferrable: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.application_name = application_name
        self.namespace = namespace
        self.backend = backend
        self.kubernetes_conn_id = kubernetes_conn_id
        self.startup_timeout = startup_timeout
        self.deadline = deadline
        self.log_tail_lines = log_tail_lines
        self._last_state: str | None = None
        self._spark_ui_url: str | None = None

    @cached_property
    def client(self) -> SparkApplicationClient:
        return get_client(resolve_backend(self.backend), kubernetes_conn_id=self.kubernetes_conn_id)

    @property
    def _where(self) -> str:
        namespace = self.client.resolve_namespace(self.namespace)
        return f"SparkApplication {self.application_name} in namespace {namespace}"

    def execute(self, context: Context) -> Any:
        # The local backend's applications are finished when the sensor starts: nothing to defer.
        if not self.deferrable or resolve_backend(self.backend) == "local":
            return super().execute(context)
        timeout_at = datetime.now(timezone.utc) + timedelta(seconds=self.timeout)
        self.defer(
            trigger=SparkApplicationTrigger(
                application_name=self.application_name, namespace=self.namespace,
                kubernetes_conn_id=self.kubernetes_conn_id, poll_interval=self.poke_interval,
                startup_timeout=self.startup_timeout, deadline=self.deadline,
                timeout_at=timeout_at.isoformat(),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict) -> None:
        """Resume after the trigger fired: act on the application it read, as :meth:`poke` does (it
        is not read again: a short ``timeToLiveSeconds`` may have removed it since)."""
        verdict = event["verdict"]
        if verdict == "error":
            raise SparkApplicationFailed(f"Waiting on {self._where} failed: {event['message']}")
        if verdict == "not_found":
            raise self._gone()
        application = self._observe(event["application"], context)
        if verdict == "timeout":
            namespace = self.client.resolve_namespace(self.namespace)
            self._copy_driver_log(application)
            self.client.delete_application(self.application_name, namespace)
            state = states.application_state(application) or "new"
            raise AirflowSensorTimeout(f"{self._where} was still {state} when the sensor's timeout of "
                                       f"{self.timeout:.0f} s ran out; the application was deleted")
        if not self._act(application, context):
            raise SparkApplicationFailed(f"{self._where}: the trigger fired ({verdict}) but the application "
                                         "is still waiting; retry the task")

    def poke(self, context: Context) -> bool:
        return self._act(self._read(context), context)

    def _gone(self) -> SparkApplicationFailed:
        return SparkApplicationFailed(
            f"{self._where} no longer exists: it was deleted while this task waited on it (as marking this "
            "task failed or clearing it does); clear the submit task too to submit it again")

    def _read(self, context: Context) -> dict:
        namespace = self.client.resolve_namespace(self.namespace)
        try:
            application = self.client.get_application(self.application_name, namespace)
        except ApplicationNotFound:
            raise self._gone() from None
        return self._observe(application, context)

    def _observe(self, application: dict, context: Context) -> dict:
        """Log a new state once, warn of a failed submission, push the Spark UI link when it appears."""
        state = states.application_state(application)
        if state != self._last_state:
            self.log.info("%s is %s", self._where, state or "new")
            if state == states.SUBMISSION_FAILED:
                self.log.warning("Submitting %s failed (the operator may retry it): %s",
                                 self.application_name, failure_reason(application))
            self._last_state = state
        url = spark_ui_url(application)
        if url and url != self._spark_ui_url:
            self.log.info("Spark UI of %s: %s", self.application_name, url)
            context["ti"].xcom_push(key=SparkUiLink().xcom_key, value=url)
            self._spark_ui_url = url
        return application

    def _act(self, application: dict, context: Context) -> bool:
        """True when COMPLETED; raise when FAILED or past a deadline (deleting it); else False."""
        namespace = self.client.resolve_namespace(self.namespace)
        state = states.application_state(application)
        verdict = states.waiting_verdict(application, startup_timeout=self.startup_timeout,
                                         deadline=self.deadline)
        if verdict == "terminal":
            self._copy_driver_log(application)
            self._record_the_end(application, context)
            if state in states.FAILURE_STATES:
                raise SparkApplicationFailed(f"{self._where} FAILED: {failure_reason(application)}")
            return True
        if verdict == "startup_timeout":
            try:
                pending = self.client.pending_reason(application)
            except SparkApplicationApiError as exc:
                pending = f"the pod could not be read ({exc})"
            reason = pending or (
                "the Spark Operator never picked it up: is the namespace among its jobNamespaces?"
                if state == states.NEW else "the driver pod gave no reason")
            self._give_up(application, namespace, f"did not start within {self.startup_timeout:.0f} s "
                                                  f"({state or 'new'}): {reason}")
        if verdict == "deadline":
            self._give_up(application, namespace,
                          f"did not finish within {self.deadline:.0f} s (still {state})")
        return False

    def _record_the_end(self, application: dict, context: Context) -> None:
        """Log and push the cost inputs of the finished application; link its history page."""
        cost = application_cost(application)
        if cost is not None:
            self.log.info("Cost inputs of %s (%s): %s", self.application_name,
                          states.application_state(application), cost.describe())
            context["ti"].xcom_push(key=COST_XCOM_KEY, value=cost.as_dict())
        history = spark_history_url(application)
        if history:
            self.log.info("Spark History of %s: %s", self.application_name, history)
            context["ti"].xcom_push(key=SparkHistoryLink().xcom_key, value=history)

    def _give_up(self, application: dict, namespace: str, why: str) -> None:
        self._copy_driver_log(application)
        self.client.delete_application(self.application_name, namespace)
        raise SparkApplicationFailed(f"{self._where} {why}; the application was deleted")

    def _copy_driver_log(self, application: dict) -> None:
        try:
            lines = self.client.read_driver_log(application, self.log_tail_lines)
        except SparkApplicationApiError as exc:
            self.log.warning("The driver log of %s could not be copied here: %s", self.application_name, exc)
            return
        if lines is None:
            return
        self.log.info("Last %d line(s) of the driver log of %s:\n%s", len(lines), self.application_name,
                      "\n".join(lines))

    def on_kill(self) -> None:
        namespace = self.client.resolve_namespace(self.namespace)
        if self.client.delete_application(self.application_name, namespace):
            self.log.info("Deleted %s: the task was killed", self._where)
