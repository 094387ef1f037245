"""The S3-compatible server the object-storage tests rely on (testing/object_store.py): what it does
that this project's publication depends on, checked against the real SeaweedFS process."""

from __future__ import annotations

import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from testing.object_store import LocalObjectStore, ObjectStoreError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with LocalObjectStore(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket("flight-delays")
        yield server


def error_code(raised: pytest.ExceptionInfo) -> tuple[str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def listening_addresses(pid: int) -> set[str]:
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in listening.splitlines() if f"pid={pid}," in line}


def test_every_port_is_on_loopback_and_a_wrong_secret_is_refused(store):
    # /healthz answers once S3 does; a component may bind its gRPC port a moment later (a CI run saw 9 of 10)
    chosen = {f"127.0.0.1:{port}" for port in [*store.ports.values(), *store.grpc_ports.values()]}
    deadline = time.monotonic() + 30
    while (mine := listening_addresses(store.process.pid)) != chosen and time.monotonic() < deadline:
        assert mine <= chosen, mine - chosen  # never a port it was not given, nor on another address
        time.sleep(0.5)
    assert mine == chosen  # 5 components, HTTP and gRPC each, all on 127.0.0.1

    store.secret_key, secret = "not-the-secret", store.secret_key  # pragma: allowlist secret
    try:
        with pytest.raises(ClientError) as raised:
            store.client().list_objects_v2(Bucket="flight-delays")
    finally:
        store.secret_key = secret
    assert error_code(raised) == ("SignatureDoesNotMatch", 403)


def test_conditional_writes_refuse_an_existing_key_and_a_stale_etag(store):
    s3 = store.client()
    first = s3.put_object(Bucket="flight-delays", Key="cond/_PUBLISHED", Body=b"v1", IfNoneMatch="*")
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket="flight-delays", Key="cond/_PUBLISHED", Body=b"v2", IfNoneMatch="*")
    assert error_code(raised) == ("PreconditionFailed", 412)

    second = s3.put_object(Bucket="flight-delays", Key="cond/_PUBLISHED", Body=b"v2", IfMatch=first["ETag"])
    with pytest.raises(ClientError) as raised:  # the ETag read before the other writer's put
        s3.put_object(Bucket="flight-delays", Key="cond/_PUBLISHED", Body=b"v3", IfMatch=first["ETag"])
    assert error_code(raised) == ("PreconditionFailed", 412)
    stored = s3.get_object(Bucket="flight-delays", Key="cond/_PUBLISHED")
    assert (stored["Body"].read(), stored["ETag"]) == (b"v2", second["ETag"])


def test_a_multipart_object_reads_back_whole_and_is_listed_at_once(store):
    s3 = store.client()
    parts = [bytes([n]) * (5 * 1024 * 1024) for n in range(2)] + [b"tail"]
    upload = s3.create_multipart_upload(Bucket="flight-delays", Key="multi/data.parquet")
    etags = [s3.upload_part(Bucket="flight-delays", Key="multi/data.parquet", UploadId=upload["UploadId"],
                            PartNumber=n, Body=body)["ETag"] for n, body in enumerate(parts, start=1)]
    s3.complete_multipart_upload(
        Bucket="flight-delays", Key="multi/data.parquet", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, start=1)]})
    listed = s3.list_objects_v2(Bucket="flight-delays", Prefix="multi/")["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("multi/data.parquet", 10 * 1024 * 1024 + 4)]
    assert s3.get_object(Bucket="flight-delays", Key="multi/data.parquet")["Body"].read() == b"".join(parts)


def test_a_port_already_taken_names_it(tmp_path, store, monkeypatch):
    from testing import object_store

    taken, chosen = store.ports["s3"], object_store.free_ports
    monkeypatch.setattr(object_store, "free_ports", lambda count: [taken, *chosen(count - 1)])
    exited = rf"SeaweedFS exited with 1 while starting: (.|\n)*port {taken} "
    server = LocalObjectStore(tmp_path)
    try:
        with pytest.raises(ObjectStoreError, match=exited):
            server.start()
    finally:
        server.stop()  # should it have started after all, the test leaves no server behind
