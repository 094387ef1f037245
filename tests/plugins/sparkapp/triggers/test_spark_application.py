"""The deferrable path: the trigger polls the fake API server with the real async client."""

from __future__ import annotations

import asyncio

from sparkapp.triggers.spark_application import SparkApplicationTrigger
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
                      "deadline": 3600}
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
    assert asyncio.run(scenario()) == {"verdict": "terminal", "state": "COMPLETED"}
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
    assert asyncio.run(first(trigger_for(name))) == {"verdict": "startup_timeout", "state": ""}
