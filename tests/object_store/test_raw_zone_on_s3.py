"""The raw zone on an ``s3://`` data root, against the real S3-compatible server: the tasks' ingest and
validation gate through Airflow's object storage and the connection, quarantine and release on S3,
and the Data Docs pages of every validation kept on S3."""

from __future__ import annotations

import json
import os
from datetime import date

import pandas as pd
import pytest

from flight_delays import partitions
from flight_delays.ingest import FLIGHTS, WEATHER, ingest_day, ingest_reference, is_ingested, publish_frame
from flight_delays.layout import DATA_FILE, RESULT_FILE, DataLayout
from flight_delays.publication import MANIFESTS, latest
from flight_delays.validation import DataValidationError, PartitionValidator
from testing.object_store import LocalObjectStore

BUCKET = "flight-delays"
# Airflow caches an object store's filesystem by connection id for the life of the process: each module
# that starts a server of its own names its connection differently, so no module reaches a stopped one.
CONN_ID = "raw_zone_test_storage"
HISTORY = [date(2013, 6, 28), date(2013, 6, 29)]
DAY = date(2013, 6, 30)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with LocalObjectStore(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def layout(store, tmp_path, monkeypatch) -> DataLayout:
    """An ``s3://`` data root of its own, reached through the Airflow connection only."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(store.connection()))
    monkeypatch.setenv("FLIGHT_DELAYS_STORAGE_CONN_ID", CONN_ID)
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", f"s3://{BUCKET}/{tmp_path.name}")
    return DataLayout.from_env()


def keys(store: LocalObjectStore, prefix: str) -> list[str]:
    """Every object under ``prefix``, as the server lists it (not through the code under test)."""
    pages = store.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"].removeprefix(prefix) for page in pages for o in page.get("Contents", []))


def test_ingest_validate_quarantine_and_release_on_s3(store, layout, tmp_path):
    prefix = f"{tmp_path.name}/"
    for day in [*HISTORY, DAY]:
        assert ingest_day(layout, day)[FLIGHTS] > 0
    ingest_reference(layout)
    PartitionValidator(docs_dir=layout.data_docs).validate_days(layout, HISTORY, reference=True)

    # What the server holds for one validated partition: two manifests, the data once, the result.
    partition_keys = keys(store, f"{prefix}raw/flights/date=2013-06-29/")
    assert [k for k in partition_keys if k.startswith(MANIFESTS)] == [
        f"{MANIFESTS}/00000001.json", f"{MANIFESTS}/00000002.json"]
    assert sorted(k.split("-", 1)[1] for k in partition_keys if not k.startswith(MANIFESTS)) == [
        RESULT_FILE, DATA_FILE]
    judged = latest(layout.raw_partition(FLIGHTS, HISTORY[-1]))
    assert (partitions.state(judged), judged.meta["rows"]) == (partitions.PASSED, 812)  # a Saturday

    # A bad feed: the day's flights with null carriers are refused, kept on S3 and copied to quarantine.
    folder = layout.raw_partition(FLIGHTS, DAY)
    with latest(folder).path(folder, DATA_FILE).open("rb") as data:
        flights = pd.read_parquet(data)
    flights.loc[:9, "carrier"] = None
    publish_frame(folder, flights, writer="a bad feed")
    with pytest.raises(DataValidationError, match=r"\[critical\] flights 2013-06-30: "
                                                  r"expect_column_values_to_not_be_null on column 'carrier'"):
        PartitionValidator(docs_dir=layout.data_docs).validate_days(layout, [DAY])
    judged = latest(folder)
    assert partitions.state(judged) == partitions.FAILED
    assert partitions.state(latest(layout.raw_partition(WEATHER, DAY))) == partitions.PASSED
    assert not is_ingested(layout, DAY)  # the next run that needs the day ingests it again
    quarantined = keys(store, f"{prefix}quarantine/flights/date=2013-06-30/")
    assert f"{MANIFESTS}/00000001.json" in quarantined and len(quarantined) == 3
    copy = latest(layout.quarantine_partition(FLIGHTS, DAY))
    assert copy.meta["source"] == f"s3://{BUCKET}/{prefix}raw/flights/date=2013-06-30"
    assert copy.path(layout.quarantine_partition(FLIGHTS, DAY), DATA_FILE).read_bytes() == (
        judged.path(folder, DATA_FILE).read_bytes())

    # The fixed extract passes and releases the day: the quarantined copy is gone from the server.
    ingest_day(layout, DAY)
    assert PartitionValidator(docs_dir=layout.data_docs).validate_days(layout, [DAY]).passed
    assert keys(store, f"{prefix}quarantine/flights/") == []
    assert partitions.state(latest(folder)) == partitions.PASSED

    # Data Docs on S3: the pages of all three validations are kept (each validator built the site in a
    # copy of it, then wrote back what it added); GX's index links the last validation's pages.
    site = keys(store, f"{prefix}data_docs/")
    assert "index.html" in site
    pages = sorted({tuple(k.split("/")[1:3]) for k in site if k.startswith("validations/")})
    days = ("2013-06-28", "2013-06-29", "2013-06-30")
    assert pages == [("raw_flights", f"flights-{d}") for d in days] + [
        ("raw_weather", f"weather-{d}") for d in days] + [("reference_planes", "planes-reference")]
    index = store.client().get_object(Bucket=BUCKET, Key=f"{prefix}data_docs/index.html")["Body"].read()
    linked = [day for day in days if f"{FLIGHTS}-{day}" in index.decode()]
    assert linked == [days[-1]]


def test_the_connection_named_by_the_knob_is_what_reaches_the_store(store, layout, monkeypatch):
    """The tasks reach the store with the connection ``FLIGHT_DELAYS_STORAGE_CONN_ID`` names, and with
    nothing else: with that connection's secret wrong, the server refuses them."""
    wrong = {**store.connection(), "password": "not-the-secret"}  # pragma: allowlist secret
    monkeypatch.setenv("AIRFLOW_CONN_STORAGE_WITH_A_WRONG_SECRET", json.dumps(wrong))
    monkeypatch.setenv("FLIGHT_DELAYS_STORAGE_CONN_ID", "storage_with_a_wrong_secret")
    with pytest.raises(PermissionError):
        ingest_day(DataLayout.from_env(), DAY)
    assert keys(store, f"{layout.root.path.split('/', 1)[1]}/") == []


def test_the_feature_job_reads_validated_data_and_publishes_features_on_s3(store, layout, tmp_path):
    """The feature SparkApplication on the local backend, its data root ``s3://``: it reads the
    validated publications through S3A and publishes its features there; the manifest carries only the
    S3A settings that are not secret, the keys come from the connection as a pod's Secret would."""
    import pyarrow.parquet as pq

    from flight_delays.ingest import source_rows
    from flight_delays.jobs import FEATURES_JOB
    from sparkapp import s3a, states
    from sparkapp.application import render_manifest
    from sparkapp.hooks.local import LocalSparkApplicationClient

    for day in [*HISTORY, DAY]:
        ingest_day(layout, day)
    ingest_reference(layout)
    PartitionValidator().validate_days(layout, [*HISTORY, DAY], reference=True)
    manifest = render_manifest(FEATURES_JOB, name="features-on-s3", namespace="default", arguments=[
        "--data-root", f"s3://{BUCKET}/{tmp_path.name}", "--start-date", DAY.isoformat(),
        "--end-date", DAY.isoformat(), "--history-start", HISTORY[0].isoformat(), "--history-days", "2"])
    assert s3a.hadoop_conf().items() <= manifest["spec"]["sparkConf"].items()
    rendered = json.dumps(manifest)
    assert store.access_key not in rendered and store.secret_key not in rendered

    client = LocalSparkApplicationClient(state_dir=tmp_path / "applications", object_store_conn_id=CONN_ID)
    application = client.create_application(manifest)
    assert states.application_state(application) == states.COMPLETED, application["status"]

    folder = layout.feature_partition(DAY)
    published = latest(folder)
    arrived = int(source_rows(FLIGHTS, DAY)["arr_delay"].notna().sum())
    assert (published.version, published.writer, published.meta) == (
        1, "SparkApplication features-on-s3", {"rows": arrived})
    (stored,) = published.files.values()
    assert "_manifests/00000001.json" in keys(store, f"{tmp_path.name}/features/date={DAY}/")
    assert stored in keys(store, f"{tmp_path.name}/features/date={DAY}/")
    with published.path(folder, "part-00000.parquet").open("rb") as part:
        assert pq.ParquetFile(part).metadata.num_rows == arrived
