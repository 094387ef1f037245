"""Registers the project's extra links with Airflow (the UI learns link names from plugins)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from flight_delays.operators import DataDocsLink
from sparkapp.links import SparkUiLink


class ExtraLinksPlugin(AirflowPlugin):
    name = "flight_delays_extra_links"
    operator_extra_links = [SparkUiLink(), DataDocsLink()]
