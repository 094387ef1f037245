"""The extra links: the Spark UI while the application runs, its history page once it ended, and the
plugin that registers them."""

from __future__ import annotations

import pytest

from sparkapp.sensors.spark_application import SparkApplicationSensor


@pytest.mark.parametrize(
    ("driver_info", "expected"),
    [
        ({"webUIAddress": "10.0.0.7:4040", "webUIIngressAddress": "spark.example.com/features-1"},
         "http://spark.example.com/features-1"),
        ({"webUIAddress": "10.0.0.7:4040"}, "http://10.0.0.7:4040"),
        ({"webUIIngressAddress": "https://spark.example.com/x"}, "https://spark.example.com/x"),
        ({}, None),
    ],
)
def test_spark_ui_url_prefers_the_ingress(driver_info, expected):
    from sparkapp.links import spark_ui_url

    assert spark_ui_url({"status": {"driverInfo": driver_info}}) == expected


def test_plugin_registers_every_extra_link():
    from extra_links_plugin import ExtraLinksPlugin

    from flight_delays.operators import DataDocsLink, MlflowRunLink, RegisterModelOperator
    from sparkapp.links import SparkHistoryLink, SparkUiLink

    assert [type(link) for link in ExtraLinksPlugin.operator_extra_links] == [
        SparkUiLink, SparkHistoryLink, DataDocsLink, MlflowRunLink]
    sensor_links = [link.name for link in SparkApplicationSensor.operator_extra_links]
    assert sensor_links == ["Spark UI", "Spark History"]
    assert [link.name for link in RegisterModelOperator.operator_extra_links] == ["MLflow run"]
