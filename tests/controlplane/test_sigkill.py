"""A submit task killed with SIGKILL anywhere between its create request and the sensor's first status
read, then retried, leaves exactly one SparkApplication: on the real control plane, as the worker.

Each trial runs the task in a child process (the submit operator's ``execute``, then the sensor's
first poke), which reports each step it reaches; the test kills it with SIGKILL a random moment
(0-20 ms) after the step chosen for that trial (a task that finished within that moment ran to its
end: that trial retries a finished task), then runs the retry, which must succeed and leave one
application of that name, created once (counted from a watch). The steps:

- ``create:sending``: the create request is about to go (killed before, during or after it);
- ``create:answered``: the API server answered the create;
- ``execute:returned``: the operator returned the name (Airflow has not pushed it to XCom yet);
- ``read:sending``: the sensor's first read of the application is about to go.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
from datetime import datetime, timedelta, timezone

import pytest

from testing.controlplane.pods import DriverExecutor, DriverOutcome

pytestmark = pytest.mark.controlplane

STEPS = ("create:sending", "create:answered", "execute:returned", "read:sending")
TRIALS_PER_STEP = 3
START = datetime(2013, 6, 1, tzinfo=timezone.utc)
#: Children fork from a server that imported these once: a trial starts in milliseconds.
PRELOAD = ["sparkapp.operators.spark_application", "sparkapp.sensors.spark_application",
           "sparkapp.hooks.kubernetes", "flight_delays.jobs", "kubernetes.client"]


class _TaskInstance:
    dag_id, map_index = "sigkill", -1

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id

    def xcom_push(self, key: str, value: object) -> None:
        pass


def run_task(env: dict[str, str], day: int, report) -> None:
    """The submit task, then the sensor's first status read; each step sent to ``report``."""
    os.environ.update(env)
    from dataclasses import replace

    from kubernetes.client import CustomObjectsApi

    from flight_delays.jobs import FEATURES_JOB
    from sparkapp.operators.spark_application import SparkApplicationOperator
    from sparkapp.sensors.spark_application import SparkApplicationSensor

    create = CustomObjectsApi.create_namespaced_custom_object
    get = CustomObjectsApi.get_namespaced_custom_object

    def reporting_create(self, *args, **kwargs):
        report.send("create:sending")
        answer = create(self, *args, **kwargs)
        report.send("create:answered")
        return answer

    def reporting_get(self, *args, **kwargs):
        report.send("read:sending")
        return get(self, *args, **kwargs)

    CustomObjectsApi.create_namespaced_custom_object = reporting_create
    CustomObjectsApi.get_namespaced_custom_object = reporting_get
    job = replace(FEATURES_JOB, name="kill")
    context = {"ti": _TaskInstance("submit_kill"), "data_interval_start": START + timedelta(days=day),
               "run_id": f"scheduled__{day}"}
    name = SparkApplicationOperator(task_id="submit_kill", job=job, backend="kubernetes").execute(context)
    report.send("execute:returned")
    sensor = SparkApplicationSensor(task_id="wait_kill", application_name=name, backend="kubernetes")
    sensor.poke({"ti": _TaskInstance("wait_kill")})
    report.send(f"done:{name}")


def test_a_task_killed_between_create_and_first_read_leaves_one_application(shared_cluster):
    # the drivers run on (the retry adopts a running application; a finished one it would replace)
    with DriverExecutor(shared_cluster.plane, [shared_cluster.namespace], run_locally=False,
                        script={"kill": DriverOutcome(after=3600)}):
        outcomes = kill_and_retry(shared_cluster.worker_environment(), shared_cluster.history)
        shared_cluster.remove_applications()
    assert len(shared_cluster.history.names("SparkApplication", "kill-")) == len(STEPS) * TRIALS_PER_STEP
    # at every step, some trial really was killed there
    assert {step for step, killed in outcomes if killed} == set(STEPS), outcomes


def kill_and_retry(env: dict[str, str], history) -> list[tuple[str, bool]]:
    """Every trial: the task killed after its step, then retried; (step, whether the kill hit)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    chance = random.Random(14)
    outcomes = []
    for index, step in enumerate(s for s in STEPS for _ in range(TRIALS_PER_STEP)):
        # The read is the task's last request and quick: a kill later than at once after its report can
        # find the task already ended (it did for all three trials in a CI run on a loaded machine).
        delay = 0.0 if step == "read:sending" else chance.uniform(0, 0.02)
        reached, killed = kill_at(context, env, index, step, delay=delay)
        reader, writer = context.Pipe(duplex=False)
        retry = context.Process(target=run_task, args=(env, index, writer))
        retry.start()
        writer.close()
        messages = receive(reader, retry, until="done:")
        retry.join(60)
        assert retry.exitcode == 0, (step, messages)
        name = messages[-1].removeprefix("done:")
        assert history.settled_created("SparkApplication", name) == 1, (step, reached, messages)
        outcomes.append((step, killed))
    return outcomes


def kill_at(context, env: dict, day: int, step: str, *, delay: float) -> tuple[list[str], bool]:
    """Start the task, SIGKILL it ``delay`` s after it reports ``step``; the steps it reported up to
    ``step``, and whether the kill found it still running (else it ended by itself, successfully)."""
    import time
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=run_task, args=(env, day, writer))
    child.start()
    writer.close()
    reached = receive(reader, child, until=step)
    time.sleep(delay)
    # Process.kill, not os.kill: the child may have ended (and the forkserver reaped it) in the delay
    child.kill()
    child.join(30)
    assert child.exitcode in (-signal.SIGKILL, 0), (step, reached, child.exitcode)
    return reached, child.exitcode == -signal.SIGKILL


def receive(reader, child, *, until: str, timeout: float = 120.0) -> list[str]:
    """The steps ``child`` reports, up to the first starting with ``until``."""
    messages: list[str] = []
    while not messages or not messages[-1].startswith(until):
        if not reader.poll(timeout):
            child.kill()
            raise AssertionError(f"no {until!r} within {timeout:.0f} s; reported {messages}")
        try:
            messages.append(reader.recv())
        except EOFError:
            raise AssertionError(f"the task ended (exit {child.exitcode}) before {until!r}; "
                                 f"reported {messages}") from None
    return messages
