"""The deferrable path: the trigger polls the fake API server with the real async client."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from sparkapp.triggers.spark_application import SparkApplicationTrigger
from testing.kubernetes_api import Fault
from tests.plugins.sparkapp.fakes import CONN_ID, NAMESPACE, submit


def trigger_for(name: str, **overrides) -> SparkApplicationTrigger:
    kwargs = {"application_name": name, "namespace": None, "kubernetes_conn_id": CONN_ID,
              "poll_interval": 0.05, "startup_timeout": 600, "deadline": 3600, **overrides}
    return SparkApplicationTrigger(**kwargs)


def test_serialize_round_trips():
    trigger = trigger_for("features-20130630-abcdef12")
    classpath, kwargs = trigger.serialize()
    assert classpath == "sparkapp.triggers.spark_application.SparkApplicationTrigger"
    assert kwargs == {"application_name": "features-20130630-abcdef12", "namespace": None,
                      "kubernetes_conn_id": CONN_ID, "poll_interval": 0.05, "startup_timeout": 600,
                      "deadline": 3600, "timeout_at": None}
    assert SparkApplicationTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_trigger_waits_until_terminal_and_survives_a_triggerer_restart(fake_k8s, controller):
    name = submit()
    controller.step()  # SUBMITTED
    controller.step()  # RUNNING

    async def scenario() -> dict:
        first = asyncio.ensure_future(trigger_for(name).run().__anext__())
        await asyncio.sleep(0.3)
        assert not first.done()
        first.cancel()  # the triggerer goes away mid-wait ...
        _, kwargs = trigger_for(name).serialize()
        resumed = SparkApplicationTrigger(**kwargs)  # ... and a new one rebuilds the trigger
        event = asyncio.ensure_future(resumed.run().__anext__())
        await asyncio.sleep(0.2)
        assert not event.done()
        controller.step()  # SUCCEEDING
        controller.step()  # COMPLETED
        return (await asyncio.wait_for(event, 10)).payload

    reads_before = fake_k8s.count("GET", f"sparkapplications/{name}$")
    event = asyncio.run(scenario())
    application = event.pop("application")
    assert event == {"verdict": "terminal", "state": "COMPLETED"}
    # the object as read, for the sensor to act on without reading it again (managedFields dropped)
    assert application == fake_k8s.apps[(NAMESPACE, name)]
    reads = fake_k8s.count("GET", f"sparkapplications/{name}$") - reads_before
    # one read per poll interval: ~0.5 s of waiting at 0.05 s, never a busy loop
    assert 5 <= reads <= 16
    assert fake_k8s.created == [name]


def test_trigger_fires_on_missing_application_and_on_startup_deadline(fake_k8s, controller):
    async def first(trigger) -> dict:
        return (await asyncio.wait_for(trigger.run().__anext__(), 10)).payload

    assert asyncio.run(first(trigger_for("features-20130630-00000000"))) == {"verdict": "not_found"}
    name = submit()
    fake_k8s.age(NAMESPACE, name, 700)
    event = asyncio.run(first(trigger_for(name)))
    assert (event["verdict"], event["state"], event["application"]["metadata"]["name"]) == (
        "startup_timeout", "", name)


def first_event(trigger) -> dict:
    async def run() -> dict:
        return (await asyncio.wait_for(trigger.run().__anext__(), 10)).payload
    return asyncio.run(run())


def test_a_rerun_gets_its_own_startup_clock(fake_k8s, controller):
    """OnFailure: a driver that failed after startup_timeout is resubmitted; the retry is not killed."""
    controller.script("features", [{"state": s, "pod": "Running"} for s in (
        "SUBMITTED", "RUNNING", "FAILING", "PENDING_RERUN", "SUBMITTED")])
    name = submit()
    controller.step()
    controller.step()
    fake_k8s.age(NAMESPACE, name, 700)  # created and first submitted 700 s ago, ran, failed
    for _ in range(3):
        controller.step()  # FAILING, PENDING_RERUN, SUBMITTED again: a new lastSubmissionAttemptTime
    assert first_event(trigger_for(name, deadline=0.5)) ["verdict"] == "deadline"
    event = asyncio.run(asyncio.wait_for(_poll_once(trigger_for(name)), 10))
    assert event is None  # SUBMITTED for a second: still within its start-up time
    fake_k8s.age(NAMESPACE, name, 601, attempt_only=True)
    assert first_event(trigger_for(name))["verdict"] == "startup_timeout"


async def _poll_once(trigger) -> dict | None:
    """The event of the first poll, or None when the trigger went on waiting."""
    task = asyncio.ensure_future(trigger.run().__anext__())
    await asyncio.sleep(0.3)
    if task.done():
        return task.result().payload
    task.cancel()
    return None


def test_the_sensors_timeout_ends_the_wait(fake_k8s, controller):
    name = submit()
    controller.step()
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    event = first_event(trigger_for(name, timeout_at=past))
    assert (event["verdict"], event["state"]) == ("timeout", "SUBMITTED")
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert asyncio.run(_poll_once(trigger_for(name, timeout_at=future))) is None


def test_transient_read_errors_are_polled_through_and_a_forbidden_read_ends_the_wait(fake_k8s, controller):
    name = submit()
    for _ in range(4):
        controller.step()
    # each poll retries 5 times (the provider's api_retries): 7 failed requests span two polls
    fake_k8s.inject(Fault("GET", f"sparkapplications/{name}$", 503, times=7))
    assert first_event(trigger_for(name))["verdict"] == "terminal"
    assert fake_k8s.count("GET", f"sparkapplications/{name}$") == 8
    fake_k8s.inject(Fault("GET", f"sparkapplications/{name}$", 403))
    event = first_event(trigger_for(name))
    assert event["verdict"] == "error" and event["message"].startswith("ApiException: (403)")


def test_killing_the_deferred_task_deletes_the_application(fake_k8s, controller):
    """Airflow 3.3 calls the trigger's on_kill when a user marks the deferred task failed or clears it."""
    name = submit()
    controller.step()
    asyncio.run(trigger_for(name).on_kill())
    assert fake_k8s.apps == {} and fake_k8s.count("DELETE", f"sparkapplications/{name}$") == 1
    asyncio.run(trigger_for(name).on_kill())  # already gone: nothing to do, no error
    assert fake_k8s.count("DELETE", f"sparkapplications/{name}$") == 2
