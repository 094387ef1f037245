"""The validation job as the DAG submits it: a SparkApplication whose verdict the gate task judges."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from devtools.manifests import render_run
from flight_delays import partitions, tasks
from flight_delays.ingest import FLIGHTS, ingest_day, ingest_reference, publish_frame
from flight_delays.layout import DATA_FILE, DataLayout, uri
from flight_delays.publication import latest
from sparkapp import states
from sparkapp.hooks.local import LocalSparkApplicationClient

DAYS = [date(2013, 6, 28), date(2013, 6, 29), date(2013, 6, 30)]
BAD_DAY = DAYS[-1]


@pytest.fixture(scope="module")
def validated_by_spark(tmp_path_factory):
    """A first run's data root with a corrupt last day, validated by the run's own SparkApplication."""
    root = tmp_path_factory.mktemp("validate-job") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(root))
        layout = DataLayout.from_env()
        for day in DAYS:
            ingest_day(layout, day)
        ingest_reference(layout)
        folder = layout.raw_partition(FLIGHTS, BAD_DAY)
        with latest(folder).path(folder, DATA_FILE).open("rb") as data:
            flights = pd.read_parquet(data)
        flights.loc[:4, "origin"] = "XXX"
        publish_frame(folder, flights, writer="a bad feed")
        conf = {"validation_engine": "spark", "window_days": 7, "history_days": 3}
        manifest = render_run(BAD_DAY, conf)["submit_validation"]
        # The run would ingest its day and the missing days of its window; here three days are there.
        missing = [date(2013, 6, d).isoformat() for d in range(21, 28)]
        assert manifest["spec"]["arguments"][-3:] == ["--days", ",".join([*missing, "2013-06-30"]),
                                                      "--reference"]
        manifest["spec"]["arguments"][-2] = ",".join(d.isoformat() for d in DAYS)
        state_dir = tmp_path_factory.mktemp("applications")
        application = LocalSparkApplicationClient(state_dir=state_dir).create_application(manifest)
    return layout, application


def test_the_application_completes_and_files_its_verdict(validated_by_spark):
    layout, application = validated_by_spark
    assert states.application_state(application) == states.COMPLETED
    verdict = json.loads(layout.verdict(BAD_DAY).read_text())
    assert verdict["application"] == application["metadata"]["name"]
    assert verdict["days"] == [d.isoformat() for d in DAYS]
    assert (verdict["partitions"], verdict["passed"], verdict["critical_failures"]) == (7, False, 1)
    (failure,) = verdict["failures"]
    assert failure == {"dataset": "flights", "day": "2013-06-30",
                       "expectation": "expect_column_values_to_be_in_set", "column": "origin",
                       "severity": "critical", "observed": 5, "examples": ["XXX", "XXX", "XXX", "XXX", "XXX"]}
    assert verdict["quarantined"] == [uri(layout.quarantine_partition(FLIGHTS, BAD_DAY))]
    # Same trail as the in-process gate: verdicts published beside the data, quarantine, Data Docs.
    judged = latest(layout.raw_partition(FLIGHTS, BAD_DAY))
    assert (partitions.state(judged), judged.writer) == (
        partitions.FAILED, f"SparkApplication {application['metadata']['name']}")
    assert latest(layout.quarantine_partition(FLIGHTS, BAD_DAY)).meta["version"] == judged.version
    assert all(partitions.state(latest(layout.raw_partition(FLIGHTS, d))) == partitions.PASSED
               for d in DAYS[:-1])
    assert (layout.data_docs / "index.html").exists()


def test_the_gate_task_fails_with_the_same_message_as_in_process(validated_by_spark, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    layout, application = validated_by_spark
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", layout.root.path)
    ingested = {"day": BAD_DAY.isoformat(), "ingested_days": [d.isoformat() for d in DAYS]}
    with pytest.raises(AirflowFailException) as raised:
        tasks.validate(ingested, engine="spark", application=application["metadata"]["name"])
    assert str(raised.value) == (
        "1 critical expectation(s) failed on 7 partition(s):\n"
        "[critical] flights 2013-06-30: expect_column_values_to_be_in_set on column 'origin', observed 5, "
        "e.g. ['XXX', 'XXX', 'XXX', 'XXX', 'XXX']")


def test_the_gate_refuses_a_verdict_of_another_application_or_other_days(validated_by_spark, monkeypatch):
    layout, application = validated_by_spark
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", layout.root.path)
    name = application["metadata"]["name"]
    ingested = {"day": BAD_DAY.isoformat(), "ingested_days": [d.isoformat() for d in DAYS]}
    with pytest.raises(ValueError, match=f"is from SparkApplication '{name}', not from 'validate-other'"):
        tasks.validate(ingested, engine="spark", application="validate-other")
    with pytest.raises(ValueError, match=r"does not cover the ingested day\(s\) \['2013-06-27'\]"):
        tasks.validate({**ingested, "ingested_days": ["2013-06-27", *ingested["ingested_days"]]},
                       engine="spark", application=name)
    with pytest.raises(ValueError, match="needs the name of the validation SparkApplication"):
        tasks.validate(ingested, engine="spark", application="")
    with pytest.raises(FileNotFoundError, match=f"SparkApplication {name} left no verdict at"):
        tasks.validate({**ingested, "day": "2013-06-29"}, engine="spark", application=name)
