"""A user acting on a deferred sensor in a real Airflow frees the cluster: marking it failed, or clearing
it, deletes its SparkApplication (and so the driver and executor pods, GPUs included).

Airflow is started as ``make airflow`` starts it (its scheduler, triggerer, API server, PostgreSQL),
with the Kubernetes backend's settings of a worker of deploy/ against the real control plane and a
DAG of two tasks: the project's submit operator and its deferrable sensor. Two runs wait at once,
their drivers running (``DriverExecutor`` keeps them running); then, through the REST API, as the UI
does, one run's sensor is marked failed and the other's is cleared. Airflow 3.3's triggerer cancels
each trigger "by user action" and calls its ``on_kill``, which must delete that run's application:
the API server's watch sees each deleted, its driver pod removed by the garbage collector, and the
other run's application untouched until its own turn. The sensor that was cleared runs again and
fails, naming the deleted application; the one marked failed stays failed.
"""

from __future__ import annotations

import json
import textwrap
import time

import httpx
import pytest

from testing.airflow_harness import Launcher, log_in, stop_with_sigint, unpause_parsed_dag
from testing.controlplane.pods import DriverExecutor, DriverOutcome

pytestmark = pytest.mark.controlplane

DAG_ID = "kill_deferred"
DAG_FILE = textwrap.dedent(f'''
    from dataclasses import replace
    from datetime import datetime

    from airflow.sdk import DAG

    from flight_delays.jobs import FEATURES_JOB
    from sparkapp.operators.spark_application import SparkApplicationOperator
    from sparkapp.sensors.spark_application import SparkApplicationSensor

    with DAG("{DAG_ID}", schedule=None, start_date=datetime(2013, 1, 1), catchup=False):
        submit = SparkApplicationOperator(task_id="submit", job=replace(FEATURES_JOB, name="userkill"),
                                          arguments=["--day", "{{{{ ds }}}}"], backend="kubernetes")
        SparkApplicationSensor(task_id="wait", application_name=submit.output, backend="kubernetes",
                               poke_interval=2, retries=0)
''')
DAYS = ("2013-06-29", "2013-06-30")


def test_marking_a_deferred_sensor_failed_or_clearing_it_deletes_its_application(shared_cluster, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "kill_deferred.py").write_text(DAG_FILE)
    airflow = Launcher(tmp_path, env={**shared_cluster.worker_environment(),
                                      "AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
    with DriverExecutor(shared_cluster.plane, [shared_cluster.namespace], run_locally=False,
                        script={"userkill": DriverOutcome(after=3600)}):
        airflow.start()
        try:
            with httpx.Client(base_url=airflow.url, timeout=30) as api:
                log_in(airflow, api)
                unpause_parsed_dag(airflow, api, DAG_ID)
                _kill_two_waiting_runs(airflow, api, shared_cluster)
                stop_with_sigint(airflow)
        except BaseException:
            print(airflow.diagnostics())
            airflow.kill_everything()
            raise
        finally:
            shared_cluster.remove_applications()


def _kill_two_waiting_runs(airflow: Launcher, api: httpx.Client, cluster) -> None:
    runs = {}
    for day in DAYS:
        response = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns",
                            json={"logical_date": f"{day}T00:00:00Z", "dag_run_id": f"manual_{day}"})
        assert response.status_code == 200, response.text
        runs[day] = response.json()["dag_run_id"]
    names = {day: _wait_until_deferred_with_its_driver_running(airflow, api, cluster, run_id)
             for day, run_id in runs.items()}
    failed, cleared = DAYS

    # The UI's "Mark as failed" on the waiting sensor.
    response = api.patch(f"/api/v2/dags/{DAG_ID}/dagRuns/{runs[failed]}/taskInstances/wait",
                         json={"new_state": "failed"})
    assert response.status_code == 200, response.text
    airflow.wait_for(f"{names[failed]} and its driver pod to be deleted",
                     lambda: _gone(cluster, names[failed]), timeout=90, every=1)
    assert _application(cluster, names[cleared])["status"]["applicationState"]["state"] == "RUNNING"

    # The UI's "Clear" on the other run's waiting sensor (only that task): it is killed, then runs again.
    response = api.post(f"/api/v2/dags/{DAG_ID}/clearTaskInstances", json={
        "dry_run": False, "dag_run_id": runs[cleared], "task_ids": ["wait"], "only_failed": False})
    assert response.status_code == 200, response.text
    airflow.wait_for(f"{names[cleared]} and its driver pod to be deleted",
                     lambda: _gone(cluster, names[cleared]), timeout=90, every=1)
    airflow.wait_for("the cleared sensor's second try to end", lambda: _task(api, runs[cleared], "wait")[
        "state"] in ("failed", "success"), timeout=120, every=2)

    assert {day: (_task(api, run_id, "submit")["state"], _task(api, run_id, "wait")["state"])
            for day, run_id in runs.items()} == dict.fromkeys(DAYS, ("success", "failed"))
    assert _task(api, runs[cleared], "wait")["try_number"] == 2
    for day, run_id in runs.items():
        killed = f"Deleted SparkApplication {names[day]}: the task was killed"
        first_try = _log(api, run_id, "wait", 1, until=killed)
        assert killed in first_try, first_try[-3000:]
    gone = f"{names[cleared]} in namespace {cluster.namespace} no longer exists"
    second_try = _log(api, runs[cleared], "wait", 2, until=gone)
    assert gone in second_try, second_try[-3000:]
    # each application was created once (nothing resubmitted it) and deleted once
    history = cluster.history
    assert {day: history.created("SparkApplication", name) for day, name in names.items()} == \
        dict.fromkeys(DAYS, 1)


def _wait_until_deferred_with_its_driver_running(airflow: Launcher, api: httpx.Client, cluster,
                                                 run_id: str) -> str:
    """The run's application name, once its sensor is deferred and its driver runs."""
    def deferred() -> bool:
        return _task(api, run_id, "wait")["state"] == "deferred"

    airflow.wait_for(f"{run_id}'s sensor to defer", deferred, timeout=240, every=2)
    name = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/submit/xcomEntries/return_value"
                   ).json()["value"]
    airflow.wait_for(f"{name}'s driver to run", lambda: (_application(cluster, name) or {}).get(
        "status", {}).get("applicationState", {}).get("state") == "RUNNING", timeout=120, every=1)
    return name


def _task(api: httpx.Client, run_id: str, task_id: str) -> dict:
    response = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _log(api: httpx.Client, run_id: str, task_id: str, try_number: int, *, until: str) -> str:
    """The try's log through the API, once it holds ``until`` (or after 60 s): the task's last lines
    reach the file after its state is reported."""
    url = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
    deadline = time.monotonic() + 60
    while True:
        response = api.get(url, params={"full_content": True}, headers={"Accept": "application/json"})
        assert response.status_code == 200, response.text
        # each line a structured message: the event, and an exception's message in error_detail
        text = "\n".join(json.dumps(line) for line in response.json()["content"])
        if until in text or time.monotonic() > deadline:
            return text
        time.sleep(1)


def _application(cluster, name: str) -> dict | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    with cluster.plane.api_client() as api:
        try:
            return client.CustomObjectsApi(api).get_namespaced_custom_object(
                "sparkoperator.k8s.io", "v1beta2", cluster.namespace, "sparkapplications", name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def _gone(cluster, name: str) -> bool:
    from kubernetes import client
    with cluster.plane.api_client() as api:
        pods = client.CoreV1Api(api).list_namespaced_pod(cluster.namespace).items
    return _application(cluster, name) is None and not any(p.metadata.name.startswith(name) for p in pods)
