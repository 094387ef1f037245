"""Extra links from a waiting task to the Spark UI and the Spark History Server page of its application."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def spark_ui_url(application: dict) -> str | None:
    """The Spark UI of a running application, from ``status.driverInfo``.

    The ingress address when the Spark Operator exposes the UI through one (``uiService`` and
    ``ingressUrlFormat`` set), else the UI service's in-cluster address.
    """
    info = application.get("status", {}).get("driverInfo", {})
    address = info.get("webUIIngressAddress") or info.get("webUIAddress")
    if not address:
        return None
    return address if "://" in address else f"http://{address}"


class XComLink(BaseOperatorLink):
    """A task-page button whose URL the task itself pushed to XCom (key ``xcom_key``) when it knew it;
    an empty link until then. Subclasses name the button."""

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""


class SparkUiLink(XComLink):
    """The "Spark UI" button on the task page; the sensor stores the URL when it first sees it."""

    name = "Spark UI"


#: Base URL of the Spark History Server that reads the applications' event logs, e.g.
#: ``https://spark-history.example.com``; unset, the sensor shows no history link.
HISTORY_SERVER_ENV = "SPARK_HISTORY_SERVER_URL"


def spark_history_url(application: dict) -> str | None:
    """The application's page on the Spark History Server, which outlives the driver and its UI.

    Needs the server's base URL (``$SPARK_HISTORY_SERVER_URL``) and the Spark application id the
    operator records (``status.sparkApplicationId``).
    """
    base = os.environ.get(HISTORY_SERVER_ENV, "").rstrip("/")
    app_id = application.get("status", {}).get("sparkApplicationId")
    if not base or not app_id:
        return None
    return f"{base}/history/{app_id}/jobs/"


class SparkHistoryLink(XComLink):
    """The "Spark History" button on the task page; the sensor stores the URL at the end."""

    name = "Spark History"
