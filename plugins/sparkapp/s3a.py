"""Hadoop's S3A connector for Spark: ``s3a://`` paths in the jobs, on both backends.

pyspark ships Hadoop's client (``hadoop-client-api`` and ``-runtime``) without the S3A filesystem.
:data:`S3A_JARS` are what it needs, from Maven Central: ``hadoop-aws`` of the same Hadoop version, the
AWS SDK v2 bundle and the analytics accelerator it compiles against (versions from ``hadoop-aws``'s
pom and its parent ``hadoop-project``), each pinned by SHA-256. ``Dockerfile.spark`` bakes the same
jars into ``/opt/spark/jars`` (tests/deploy checks the versions and digests); locally,
:func:`local_jars` downloads them once into ``~/.cache/flight-delays/s3a-jars`` (or
``$S3A_JARS_CACHE``), verified before they are used.

Nothing secret is in a manifest: :func:`hadoop_conf` only sets path-style addressing and the
environment-variable credentials provider. The endpoint and the credentials come from the pods'
environment (a Kubernetes Secret: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``), which the AWS SDK reads itself.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
#: The Hadoop version of pyspark's bundled client, which ``hadoop-aws`` must match.
HADOOP_VERSION = "3.5.0"


@dataclass(frozen=True)
class MavenJar:
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        folder = f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}"
        return f"{MAVEN_CENTRAL}/{folder}/{self.filename}"


S3A_JARS = (
    MavenJar("org.apache.hadoop", "hadoop-aws", HADOOP_VERSION,
             "66bd9eefb938b1a1657487324b63c13df2d8b17164a1dd24e0ef37b905bc5baa"),  # pragma: allowlist secret
    # hadoop-project 3.5.0: aws-java-sdk-v2.version (686 MB: the whole SDK, as Hadoop ships it)
    MavenJar("software.amazon.awssdk", "bundle", "2.35.4",
             "db4b55f24ad1b4e70f17eb1717a4de76a8dadc5a27d764be7c44ff67b2c1c677"),  # pragma: allowlist secret
    # hadoop-project 3.5.0: amazon-s3-analyticsaccelerator-s3.version (a compile dependency of hadoop-aws)
    MavenJar("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", "1.3.1",
             "4959a9747cbb479c73c3ffbcd479bee5b014f8b2880994585a8693fb9d24675e"),  # pragma: allowlist secret
)

#: URI schemes of an object-store path a job may be given.
OBJECT_STORE_SCHEMES = ("s3://", "s3a://")
#: The credentials provider that reads ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``.
ENVIRONMENT_CREDENTIALS = "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"


class S3AJarError(RuntimeError):
    """A jar could not be downloaded, or what was downloaded is not the pinned file."""


def cache_dir() -> Path:
    return Path(os.environ.get("S3A_JARS_CACHE") or Path.home() / ".cache" / "flight-delays" / "s3a-jars")


def local_jars() -> list[Path]:
    """The S3A jars in the local cache, downloaded and verified first where missing."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return [_cached(jar, folder) for jar in S3A_JARS]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached(jar: MavenJar, folder: Path) -> Path:
    target = folder / jar.filename
    if target.is_file():
        return target  # it was verified before it was renamed there
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{jar.filename}.", suffix=".part")
    os.close(fd)
    try:
        try:
            with urllib.request.urlopen(jar.url, timeout=60) as answer, open(tmp, "wb") as out:
                while block := answer.read(1 << 20):
                    out.write(block)
        except OSError as exc:
            raise S3AJarError(f"could not download {jar.url}: {exc}") from exc
        if (found := _sha256(Path(tmp))) != jar.sha256:
            raise S3AJarError(f"{jar.url} has SHA-256 {found}, not the pinned {jar.sha256}: refusing it")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def hadoop_conf() -> dict[str, str]:
    """The S3A settings a job's Spark conf carries (``spark.hadoop.*``): none of them secret."""
    return {
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.aws.credentials.provider": ENVIRONMENT_CREDENTIALS,
    }


def names_object_store(arguments) -> bool:
    """Whether a job's arguments name an ``s3://`` or ``s3a://`` URI (its data root on an object store)."""
    return any(str(a).startswith(OBJECT_STORE_SCHEMES) for a in arguments)


def uses_s3a(spark_conf: dict[str, str]) -> bool:
    """Whether a rendered job reads through S3A (its Spark conf carries :func:`hadoop_conf`)."""
    return spark_conf.get("spark.hadoop.fs.s3a.aws.credentials.provider") == ENVIRONMENT_CREDENTIALS


def environment_from_connection(conn_id: str) -> dict[str, str]:
    """What a Spark pod's Secret holds, from the Airflow connection ``conn_id`` (type ``aws``: login,
    password, ``extra.endpoint_url`` and ``extra.region_name``), for a job the local backend runs."""
    from airflow.sdk import Connection

    connection = Connection.get(conn_id)
    extra = connection.extra_dejson
    environment = {"AWS_ACCESS_KEY_ID": connection.login or "",
                   "AWS_SECRET_ACCESS_KEY": connection.password or ""}
    if extra.get("endpoint_url"):
        environment["AWS_ENDPOINT_URL_S3"] = extra["endpoint_url"]
    if extra.get("region_name"):
        environment["AWS_REGION"] = extra["region_name"]
    return environment


def main() -> int:
    """``python -m sparkapp.s3a``: download the jars into the cache and print their paths."""
    for path in local_jars():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
