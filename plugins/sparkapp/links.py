"""Extra link from a waiting task to the Spark UI of its application."""

from __future__ import annotations

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


class SparkUiLink(BaseOperatorLink):
    """The "Spark UI" button on the task page; the sensor stores the URL when it first sees it."""

    name = "Spark UI"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""
