"""Registers the project's extra links with Airflow (the UI learns link names from plugins)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sparkapp.links import SparkUiLink


class SparkApplicationPlugin(AirflowPlugin):
    name = "sparkapp"
    operator_extra_links = [SparkUiLink()]
