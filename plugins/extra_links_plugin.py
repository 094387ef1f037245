"""Registers the project's extra links with Airflow (the UI learns link names from plugins)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from flight_delays.operators import DataDocsLink, MlflowRunLink
from sparkapp.links import SparkHistoryLink, SparkUiLink


class ExtraLinksPlugin(AirflowPlugin):
    name = "flight_delays_extra_links"
    operator_extra_links = [SparkUiLink(), SparkHistoryLink(), DataDocsLink(), MlflowRunLink()]
