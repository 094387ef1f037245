"""Publishing a folder's files as one unit (flight_delays/publication.py), on a local folder and on
the real S3-compatible server: readers see whole publications only, a killed writer leaves the
previous one intact, and of two racing writers one wins and the other fails naming the winner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta

import pytest

from flight_delays import publication
from flight_delays.publication import PublicationConflict, PublicationError, latest, publish
from testing.object_store import LocalObjectStore

# Airflow caches an object store's filesystem by connection id for the life of the process: each module
# that starts a server of its own names its connection differently, so no module reaches a stopped one.
CONN_ID = "publication_test_storage"


@pytest.fixture(scope="module")
def object_store(tmp_path_factory):
    with LocalObjectStore(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket("flight-delays")
        variable = f"AIRFLOW_CONN_{CONN_ID.upper()}"
        os.environ[variable] = json.dumps(server.connection())
        try:
            yield server
        finally:
            os.environ.pop(variable, None)


@pytest.fixture(params=["local", "s3"])
def folder(request, tmp_path):
    """A partition's folder that was never published: under a local data root, or under s3://."""
    from airflow.sdk import ObjectStoragePath

    if request.param == "local":
        return ObjectStoragePath(f"file://{tmp_path}/data/raw/flights/date=2013-06-30")
    request.getfixturevalue("object_store")
    return ObjectStoragePath(f"s3://flight-delays/{tmp_path.name}/raw/flights/date=2013-06-30",
                             conn_id=CONN_ID)


def stored_names(folder) -> set[str]:
    folder.fs.invalidate_cache(folder.path)  # another process wrote there
    return {entry.name for entry in folder.iterdir() if entry.name != publication.MANIFESTS}


def test_a_reader_sees_the_latest_whole_publication(folder):
    assert latest(folder) is None
    first = publish(folder, {"data.parquet": b"v1", "_validation.json": b"{}"}, writer="run-1")
    second = publish(folder, {"data.parquet": lambda out: out.write(b"v2")}, writer="run-2", meta={"rows": 2})
    current = latest(folder)
    assert (current.version, current.writer, current.meta, sorted(current.files)) == (
        2, "run-2", {"rows": 2}, ["data.parquet"])
    assert current == second
    assert current.path(folder, "data.parquet").read_bytes() == b"v2"
    with pytest.raises(PublicationError, match=r"version 2 has no file '_validation.json' "
                                               r"\(it has \['data.parquet'\]\)"):
        current.path(folder, "_validation.json")
    # The previous publication's files stay (a reader may have read its manifest a moment ago).
    assert stored_names(folder) == set(first.files.values()) | set(second.files.values())


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from airflow.sdk import ObjectStoragePath
    from flight_delays.publication import publish

    folder = ObjectStoragePath(sys.argv[1], conn_id=sys.argv[2] or None)

    def half_then_killed(out):
        out.write(b"half of v2")
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    publish(folder, {"done.parquet": b"complete", "data.parquet": half_then_killed}, writer="killed")
""")


def test_a_writer_killed_mid_write_leaves_the_previous_publication_intact(folder, monkeypatch):
    first = publish(folder, {"data.parquet": b"v1"}, writer="run-1")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), folder.conn_id or ""],
                            capture_output=True, text=True, timeout=120, env=os.environ)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert latest(folder) == first
    assert first.path(folder, "data.parquet").read_bytes() == b"v1"
    # What it wrote stays, invisible: the file it finished and, on a local disk, the half-written one
    # (s3fs uploads a file when it is closed: on S3 the half-written one never existed).
    orphans = {name.split("-", 1)[1] for name in stored_names(folder) - set(first.files.values())}
    assert orphans == ({"done.parquet", "data.parquet"} if folder.protocol == "file" else {"done.parquet"})

    # A later publication removes files no manifest names once they are past the grace period.
    monkeypatch.setattr(publication, "ORPHAN_GRACE", timedelta(0))
    second = publish(folder, {"data.parquet": b"v2"}, writer="run-2")
    assert stored_names(folder) == set(first.files.values()) | set(second.files.values())
    third = publish(folder, {"data.parquet": b"v3"}, writer="run-3")
    assert stored_names(folder) == set(second.files.values()) | set(third.files.values())


def test_a_file_no_manifest_names_is_kept_while_recent(folder):
    publish(folder, {"data.parquet": b"v1"}, writer="run-1")
    (folder / "0123456789ab-data.parquet").write_bytes(b"a writer still writing")
    publish(folder, {"data.parquet": b"v2"}, writer="run-2")
    assert "0123456789ab-data.parquet" in stored_names(folder)


def test_of_two_racing_writers_one_wins_and_the_other_names_it(folder):
    publish(folder, {"data.parquet": b"v1"}, writer="run-1")
    both_read_v1 = threading.Barrier(2, timeout=60)
    outcomes: dict[str, object] = {}

    def write(writer: str) -> None:
        def content(out):
            both_read_v1.wait()  # each has read version 1 and is writing version 2
            out.write(writer.encode())
        try:
            outcomes[writer] = publish(folder, {"data.parquet": content}, writer=writer)
        except Exception as exc:
            outcomes[writer] = exc

    threads = [threading.Thread(target=write, args=(w,)) for w in ("backfill-a", "backfill-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == 2, outcomes
    (winner,) = [w for w, o in outcomes.items() if not isinstance(o, Exception)]
    (loser,) = [w for w, o in outcomes.items() if isinstance(o, PublicationConflict)]
    assert len(outcomes) == 2, outcomes
    won = outcomes[winner]
    assert str(outcomes[loser]).startswith(
        f"{folder}: version 2 was published by {winner} at {won.published_at} while {loser} was writing it")
    assert latest(folder) == won
    assert won.path(folder, "data.parquet").read_bytes() == winner.encode()
    assert not any(name.endswith("-data.parquet") and (folder / name).read_bytes() == loser.encode()
                   for name in stored_names(folder))  # the loser's file is gone


def test_a_manifest_that_is_not_one_is_named(folder):
    (folder / publication.MANIFESTS).mkdir(parents=True, exist_ok=True)
    (folder / publication.MANIFESTS / "00000001.json").write_text("{not json")
    with pytest.raises(PublicationError, match=r"_manifests/00000001.json is not a manifest this project "):
        latest(folder)


def test_a_publication_needs_a_file(folder):
    with pytest.raises(PublicationError, match="a publication needs at least one file"):
        publish(folder, {}, writer="run-1")


def test_a_store_without_a_create_only_write_is_refused_and_keeps_nothing():
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach

    attach("memory", fs=fsspec.filesystem("memory"))  # fsspec's in-memory store, known to Airflow
    folder = ObjectStoragePath("memory://flight-delays/raw/flights/date=2013-06-30")
    with pytest.raises(PublicationError, match="publishing needs a create-only write, which this project "
                                               "does on a local disk and on S3, not on 'memory'"):
        publish(folder, {"data.parquet": b"v1"}, writer="run-1")
    assert stored_names(folder) == set()
