"""The two images agree with the code that relies on them.

No Docker engine runs on the build machines, so the images are not built here; what can be checked
without building them is checked: the base images' versions against the pins, every path and
version the rendered SparkApplications name inside the job image, the non-root users, the job
image's lock against the runtime lock. ``make lint`` runs hadolint on both Dockerfiles.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from flight_delays import jobs
from sparkapp import application, s3a
from tests.conftest import PROJECT_ROOT

AIRFLOW_DOCKERFILE = PROJECT_ROOT / "Dockerfile"
SPARK_DOCKERFILE = PROJECT_ROOT / "Dockerfile.spark"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def build_args(dockerfile: Path) -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in instructions(dockerfile)
                if keyword == "ARG" and "=" in rest)


def the_one(dockerfile: Path, keyword: str) -> str:
    (value,) = [rest for k, rest in instructions(dockerfile) if k == keyword]
    return value


def last(dockerfile: Path, keyword: str) -> str:
    return [rest for k, rest in instructions(dockerfile) if k == keyword][-1]


def pins(lock: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), flags=re.MULTILINE))


def test_instructions_join_continuations_and_skip_comments(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# a comment\nFROM base:1\nARG A=1\nRUN set -e; \\\n    echo hi\nUSER 185\n")
    assert instructions(dockerfile) == [("FROM", "base:1"), ("ARG", "A=1"), ("RUN", "set -e;      echo hi"),
                                        ("USER", "185")]


def test_airflow_image_is_the_official_one_of_the_pinned_airflow_and_python():
    airflow_version = pins(PROJECT_ROOT / "requirements.txt")["apache-airflow"]
    assert the_one(AIRFLOW_DOCKERFILE, "FROM") == f"apache/airflow:{airflow_version}-python3.11"
    assert sys.version_info[:2] == (3, 11)  # the Python the lock and the tests are for
    assert last(AIRFLOW_DOCKERFILE, "USER") == "50000"  # the official image's airflow user


def test_spark_image_is_the_official_python_one_of_the_pinned_spark():
    assert the_one(SPARK_DOCKERFILE, "FROM") == (
        f"apache/spark:{application.SPARK_VERSION}-scala{jobs.SCALA_BINARY_VERSION}-java17-python3-ubuntu")
    assert last(SPARK_DOCKERFILE, "USER") == str(application.SPARK_UID) == "185"
    assert application.POD_SECURITY_CONTEXT["runAsUser"] == application.SPARK_UID


def test_spark_image_holds_what_the_manifests_point_at():
    args = build_args(SPARK_DOCKERFILE)
    text = SPARK_DOCKERFILE.read_text()
    # spec.monitoring's java agent
    assert args["JMX_EXPORTER_VERSION"] == application.JMX_EXPORTER_VERSION
    assert application.JMX_EXPORTER_JAR == (
        "/opt/spark/monitoring/jmx_prometheus_javaagent-${JMX_EXPORTER_VERSION}.jar"
        .replace("${JMX_EXPORTER_VERSION}", args["JMX_EXPORTER_VERSION"]))
    assert '"/opt/spark/monitoring/jmx_prometheus_javaagent-${JMX_EXPORTER_VERSION}.jar"' in text
    # the GPU profile's spec.deps.jars
    assert args["RAPIDS_VERSION"] == jobs.RAPIDS_VERSION
    assert jobs.RAPIDS_JAR == f"local:///opt/spark/rapids/rapids-4-spark_2.13-{args['RAPIDS_VERSION']}.jar"
    assert '"/opt/spark/rapids/rapids-4-spark_2.13-${RAPIDS_VERSION}.jar"' in text
    # Hadoop's S3A connector, the same jars the local backend downloads (sparkapp.s3a), on the class path
    versions = {"hadoop-aws": "HADOOP_AWS_VERSION", "bundle": "AWS_SDK_BUNDLE_VERSION",
                "analyticsaccelerator-s3": "S3_ANALYTICS_ACCELERATOR_VERSION"}
    assert [(jar.artifact, jar.version) for jar in s3a.S3A_JARS] == [
        (artifact, args[arg]) for artifact, arg in versions.items()]
    runs = re.sub(r"\s+", " ", " ".join(rest for k, rest in instructions(SPARK_DOCKERFILE) if k == "RUN"))
    for jar in s3a.S3A_JARS:
        version = f"${{{versions[jar.artifact]}}}"
        url = jar.url.replace(s3a.MAVEN_CENTRAL, "${MAVEN}").replace(jar.version, version)
        target = f"/opt/spark/jars/{jar.artifact}-{version}.jar"
        assert f'fetch "{url}" "{target}"' in runs, (url, target)
    # the OpenLineage listener speaks the protocol version of the Python client Airflow uses
    assert args["OPENLINEAGE_VERSION"] == pins(PROJECT_ROOT / "requirements.txt")["openlineage-python"]
    # the project where mainApplicationFile (local://IMAGE_APP_ROOT/...) points, on PYTHONPATH
    assert the_one(SPARK_DOCKERFILE, "WORKDIR") == application.IMAGE_APP_ROOT
    copied = [rest.split()[-1] for k, rest in instructions(SPARK_DOCKERFILE)
              if k == "COPY" and "--chown" in rest]
    assert copied == ["spark_jobs/", "plugins/", "include/"]
    python_path = ":".join(f"{application.IMAGE_APP_ROOT}/{p}".removesuffix("/.")
                           for p in application.PYTHON_PATH)
    assert f"PYTHONPATH={python_path} " in last(SPARK_DOCKERFILE, "ENV")


def test_uv_of_the_spark_image_is_the_makefiles():
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (PROJECT_ROOT / "Makefile").read_text(), re.M).group(1)
    assert build_args(SPARK_DOCKERFILE)["UV_VERSION"] == makefile_uv


@pytest.mark.parametrize("lock", ["requirements-spark.txt", "requirements-spark-gpu.txt"])
def test_job_image_lock_agrees_with_the_runtime_lock(lock):
    runtime, image = pins(PROJECT_ROOT / "requirements.txt"), pins(PROJECT_ROOT / lock)
    assert {name: (version, runtime[name]) for name, version in image.items()
            if name in runtime and runtime[name] != version} == {}
    # pyspark comes with the base image: a second copy from PyPI would shadow its Spark version
    assert "pyspark" not in image and "pyspark-client" not in image
    expected_xgboost = {"requirements-spark.txt": "xgboost-cpu",
                        "requirements-spark-gpu.txt": "xgboost"}[lock]
    assert {name for name in image if name.startswith("xgboost")} == {expected_xgboost}
    assert image[expected_xgboost] == runtime["xgboost-cpu"]


def test_the_images_torch_is_the_development_machines():
    """The images' CPU build (requirements-torch.txt) and PyPI's build that tests run on
    (requirements-torch-pypi.txt) are one torch version, with the dependencies both pin agreeing."""
    image = pins(PROJECT_ROOT / "requirements-torch.txt")
    development = pins(PROJECT_ROOT / "requirements-torch-pypi.txt")
    assert image["torch"] == development["torch"] == "2.13.0"
    assert {name: (version, development[name]) for name, version in image.items()
            if name in development and development[name] != version} == {}


def copied_sources(dockerfile: Path) -> list[str]:
    """What the Dockerfile's COPY instructions take from the build context."""
    sources = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "COPY":
            sources += [token for token in rest.split() if not token.startswith("--")][:-1]
    return sources


def test_docker_context_holds_exactly_what_the_images_copy():
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    let_in = {line.removeprefix("!") for line in ignored if line.startswith("!")}
    assert ignored[ignored.index("*")] == "*"  # everything else (.venv, .local, build, .git) stays out
    assert set(copied_sources(AIRFLOW_DOCKERFILE) + copied_sources(SPARK_DOCKERFILE)) == let_in


def test_no_secret_is_baked_into_an_image():
    for dockerfile in (AIRFLOW_DOCKERFILE, SPARK_DOCKERFILE):
        names = [re.split(r"[= ]", rest)[0] for k, rest in instructions(dockerfile) if k in ("ARG", "ENV")]
        env = " ".join(rest for k, rest in instructions(dockerfile) if k == "ENV")
        names += re.findall(r"\s([A-Z_]+)=", env)
        secret_like = [n for n in names if re.search(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY", n)]
        assert secret_like == [], dockerfile


def hadolint(*dockerfiles: Path) -> tuple[int, str]:
    binary = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(binary), "--no-color", *map(str, dockerfiles)], capture_output=True,
                            text=True, timeout=60)
    return result.returncode, result.stdout


def test_hadolint_finds_nothing_in_either_dockerfile():
    assert hadolint(AIRFLOW_DOCKERFILE, SPARK_DOCKERFILE) == (0, "")


def test_hadolint_flags_an_image_that_ends_as_root(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM apache/spark:4.3.0-scala2.13-java17-python3-ubuntu\nUSER root\n")
    code, found = hadolint(dockerfile)
    assert code == 1 and "DL3002 warning: Last USER should not be root" in found
