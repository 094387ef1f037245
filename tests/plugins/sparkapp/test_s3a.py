"""The S3A connector (sparkapp/s3a.py): the pinned jars, verified, and a real Spark job on ``s3a://``
against the real S3-compatible server, its endpoint and credentials only in the environment."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sparkapp import s3a
from testing.object_store import LocalObjectStore

JOB = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    target = sys.argv[1]
    spark.range(1000).selectExpr("id", "id % 7 AS bucket").write.mode("overwrite").parquet(target)
    back = spark.read.parquet(target)
    print("ROWS", back.count(), back.selectExpr("sum(bucket)").first()[0])
""")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with LocalObjectStore(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket("flight-delays")
        yield server


def spark_submit(tmp_path, target: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    job = tmp_path / "job.py"
    job.write_text(JOB)
    confs = [arg for key, value in s3a.hadoop_conf().items() for arg in ("--conf", f"{key}={value}")]
    command = [os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", "local[1]",
               "--conf", "spark.ui.enabled=false", "--jars", ",".join(map(str, s3a.local_jars())),
               *confs, str(job), target]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, timeout=300)


def test_the_jars_are_hadoop_aws_of_pysparks_hadoop_and_verified_in_the_cache():
    import pyspark

    bundled = {p.name for p in (Path(pyspark.__file__).parent / "jars").iterdir()}
    assert f"hadoop-client-api-{s3a.HADOOP_VERSION}.jar" in bundled
    jars = s3a.local_jars()
    assert [p.name for p in jars] == ["hadoop-aws-3.5.0.jar", "bundle-2.35.4.jar",
                                      "analyticsaccelerator-s3-1.3.1.jar"]
    for jar, path in zip(s3a.S3A_JARS, jars, strict=True):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == jar.sha256
        assert path.parent == s3a.cache_dir()


def test_a_download_that_is_not_the_pinned_file_is_refused_and_not_cached(tmp_path, monkeypatch):
    served = tmp_path / "maven"
    fake = s3a.MavenJar("org.example", "thing", "1.0", "0" * 64)
    (served / "org/example/thing/1.0").mkdir(parents=True)
    (served / "org/example/thing/1.0/thing-1.0.jar").write_bytes(b"not the pinned bytes")
    monkeypatch.setattr(s3a, "MAVEN_CENTRAL", served.as_uri())
    monkeypatch.setattr(s3a, "S3A_JARS", (fake,))
    monkeypatch.setenv("S3A_JARS_CACHE", str(tmp_path / "cache"))
    found = hashlib.sha256(b"not the pinned bytes").hexdigest()
    with pytest.raises(s3a.S3AJarError, match=rf"thing-1.0.jar has SHA-256 {found}, not the pinned 0{{64}}"):
        s3a.local_jars()
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-written or wrong is left


def test_a_spark_job_writes_and_reads_parquet_on_s3a_with_credentials_from_the_environment(store, tmp_path):
    done = spark_submit(tmp_path, "s3a://flight-delays/probe/numbers", store.environment())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ROWS 1000 2997" in done.stdout  # sum of id % 7 over 0..999
    listed = store.client().list_objects_v2(Bucket="flight-delays", Prefix="probe/")["Contents"]
    keys = [o["Key"] for o in listed]
    assert "probe/numbers/_SUCCESS" in keys and sum(k.endswith(".parquet") for k in keys) == 1


def test_a_wrong_secret_fails_the_job_with_the_servers_refusal(store, tmp_path):
    done = spark_submit(tmp_path, "s3a://flight-delays/probe/refused",
                        {**store.environment(), "AWS_SECRET_ACCESS_KEY": "wrong"})  # pragma: allowlist secret
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    # S3A's first request is a HEAD (no body to name the signature): the job fails on its 403
    assert ("java.nio.file.AccessDeniedException: s3a://flight-delays/probe/refused: getFileStatus on "
            "s3a://flight-delays/probe/refused") in output, output[-3000:]
    assert "Status Code: 403" in output
    assert not store.client().list_objects_v2(Bucket="flight-delays", Prefix="probe/refused").get("Contents")


def test_a_job_given_an_object_store_uri_is_rendered_for_s3a_and_no_other_is():
    from flight_delays.jobs import FEATURES_JOB
    from sparkapp.application import render_manifest

    on_s3 = render_manifest(FEATURES_JOB, name="features-s3", namespace="ml",
                            arguments=["--data-root", "s3://lake/flights"])
    on_disk = render_manifest(FEATURES_JOB, name="features-disk", namespace="ml",
                              arguments=["--data-root", "/data/flights"])
    assert on_s3["spec"]["sparkConf"] == {**on_disk["spec"]["sparkConf"], **s3a.hadoop_conf()}
    assert s3a.uses_s3a(on_s3["spec"]["sparkConf"]) and not s3a.uses_s3a(on_disk["spec"]["sparkConf"])
    assert not any(key.startswith("spark.hadoop.fs.s3a") for key in on_disk["spec"]["sparkConf"])
