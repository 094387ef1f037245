"""The job image's contract: this project's image, as one value."""

from __future__ import annotations

import dataclasses
import importlib.metadata

import pytest

from sparkapp import application
from sparkapp.application import IMAGE_CONTRACT, SPARK_VERSION, ImageContract


def test_spark_version_matches_the_pinned_pyspark():
    assert importlib.metadata.version("pyspark") == SPARK_VERSION


def test_the_default_contract_is_this_projects_job_image():
    assert IMAGE_CONTRACT == ImageContract(app_root="/opt/spark/work-dir", python_path=(".", "plugins"),
                                           spark_version="4.3.0", spark_uid=185, jmx_exporter_version="1.0.1")
    assert IMAGE_CONTRACT.jmx_exporter_jar == "/opt/spark/monitoring/jmx_prometheus_javaagent-1.0.1.jar"
    assert IMAGE_CONTRACT.local_uri("spark_jobs/train.py") == "local:///opt/spark/work-dir/spark_jobs/train.py"
    # The names the Dockerfile's tests and the local backend have always read are the contract's fields.
    assert (application.IMAGE_APP_ROOT, application.PYTHON_PATH, application.SPARK_VERSION,
            application.SPARK_UID, application.JMX_EXPORTER_VERSION, application.JMX_EXPORTER_JAR) == (
        "/opt/spark/work-dir", (".", "plugins"), "4.3.0", 185, "1.0.1",
        "/opt/spark/monitoring/jmx_prometheus_javaagent-1.0.1.jar")


def test_a_contract_is_a_value_overridden_field_by_field():
    other = dataclasses.replace(IMAGE_CONTRACT, jmx_exporter_version="1.1.0")
    assert other.jmx_exporter_jar == "/opt/spark/monitoring/jmx_prometheus_javaagent-1.1.0.jar"
    assert (other.app_root, other.spark_uid) == ("/opt/spark/work-dir", 185)
    with pytest.raises(dataclasses.FrozenInstanceError):
        IMAGE_CONTRACT.app_root = "/elsewhere"  # type: ignore[misc]
