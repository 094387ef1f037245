"""The Spark History Server of deploy/base, run as its Deployment runs it (command and options from
the YAML, Spark from the pinned pyspark instead of the job image), serves a real application's page
at the address the sensors' "Spark History" link gives."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from sparkapp.links import spark_history_url
from tests.deploy.conftest import DEPLOY_DIR

pytestmark = pytest.mark.e2e


def history_container() -> dict:
    documents = yaml.safe_load_all((DEPLOY_DIR / "base" / "spark-history.yaml").read_text())
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_history_server_serves_the_page_the_link_points_at(tmp_path, monkeypatch):
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    events = tmp_path / "spark-events"
    events.mkdir()
    job = tmp_path / "count.py"
    job.write_text("from pyspark.sql import SparkSession\n"
                   "spark = SparkSession.builder.appName('history-check').getOrCreate()\n"
                   "assert spark.range(10).count() == 10\n")
    # an application that writes its event log as the SparkApplications do (SPARK_EVENT_LOG_DIR)
    subprocess.run([str(spark_home / "bin" / "spark-submit"), "--master", "local[1]",
                    "--conf", "spark.eventLog.enabled=true",
                    "--conf", f"spark.eventLog.dir={events.as_uri()}",
                    "--conf", "spark.ui.enabled=false", str(job)],
                   check=True, capture_output=True, timeout=180,
                   env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable})
    (log_dir,) = [p.name for p in events.iterdir()]
    app_id = log_dir.removeprefix("eventlog_v2_")

    container = history_container()
    command = container["command"]
    assert command == ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.history.HistoryServer"]
    (options,) = [e["value"] for e in container["env"] if e["name"] == "SPARK_HISTORY_OPTS"]
    assert "-Dspark.history.fs.logDirectory=file:///data/spark-events" in options.split()
    port = free_port()
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_HISTORY_OPTS": options.replace("file:///data/spark-events", events.as_uri())
           + f" -Dspark.history.ui.port={port}"}
    server = subprocess.Popen([str(spark_home / "bin" / "spark-class"), *command[1:]], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("SPARK_HISTORY_SERVER_URL", base)
        link = spark_history_url({"status": {"sparkApplicationId": app_id}})
        assert link == f"{base}/history/{app_id}/jobs/"
        deadline = time.monotonic() + 90
        listed = []
        while time.monotonic() < deadline and server.poll() is None:
            try:
                listed = httpx.get(f"{base}/api/v1/applications", timeout=5).json()
                if listed:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        assert [(a["id"], a["name"], a["attempts"][0]["completed"]) for a in listed] == [
            (app_id, "history-check", True)]
        page = httpx.get(link, timeout=30, follow_redirects=True)
        assert page.status_code == 200 and "history-check" in page.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
