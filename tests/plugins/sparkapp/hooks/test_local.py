"""The local backend: a manifest translated into ``spark-submit`` and run to its end, its object kept
as JSON with the Spark Operator's ``status`` shape."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from sparkapp import states
from sparkapp.application import ImageContract, PodResources, SparkJob, render_manifest
from sparkapp.client import ApplicationNotFound
from sparkapp.hooks.local import LocalSparkApplicationClient, local_path, spark_submit_arguments

PROJECT = Path("/srv/project")


def manifest_for(main_file: str, *, arguments=(), py_files=(), name="job-20130630-0123abcd") -> dict:
    job = SparkJob(name="job", main_application_file=main_file, image="i",
                   driver=PodResources(cores=2, memory="768m"), executor=PodResources(cores=3, memory="2g"),
                   executor_instances=5, spark_conf={"spark.sql.shuffle.partitions": "8"}, py_files=py_files)
    return render_manifest(job, name=name, namespace="ml-dev", arguments=arguments)


def test_manifest_translates_to_spark_submit_arguments():
    manifest = manifest_for("spark_jobs/features.py", arguments=["--day", "2013-06-30"],
                            py_files=("deps/a.zip", "deps/b.py"))
    manifest["spec"]["deps"].update(jars=["s3a://bucket/x.jar"], packages=["org.example:lib:1.0"])
    assert spark_submit_arguments(manifest, project_root=PROJECT) == {
        "application": "/srv/project/spark_jobs/features.py",
        "name": "job-20130630-0123abcd",
        "application_args": ["--day", "2013-06-30"],
        "conf": {"spark.sql.shuffle.partitions": "8", "spark.driver.cores": "2"},
        "driver_memory": "768m",
        "executor_cores": 3,
        "executor_memory": "2g",
        "num_executors": 5,
        "py_files": "/srv/project/deps/a.zip,/srv/project/deps/b.py",
        "jars": "s3a://bucket/x.jar",
        "files": None,
        "packages": "org.example:lib:1.0",
    }


def test_spark_submit_command_built_by_the_provider_hook():
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    arguments = spark_submit_arguments(manifest_for("spark_jobs/train.py", arguments=["--x", "1"]),
                                       project_root=PROJECT)
    application = arguments.pop("application")
    command = SparkSubmitHook(conn_id="spark_default", **arguments)._build_spark_submit_command(application)
    assert command == [
        "spark-submit", "--master", "local[2]",
        "--conf", "spark.sql.shuffle.partitions=8", "--conf", "spark.driver.cores=2",
        "--num-executors", "5", "--executor-cores", "3", "--executor-memory", "2g",
        "--driver-memory", "768m", "--name", "job-20130630-0123abcd",
        "/srv/project/spark_jobs/train.py", "--x", "1",
    ]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("local:///opt/spark/work-dir/spark_jobs/a.py", "/srv/project/spark_jobs/a.py"),
        ("s3a://bucket/jobs/a.py", "s3a://bucket/jobs/a.py"),
        ("/abs/a.py", "/abs/a.py"),
    ],
)
def test_local_path_maps_the_image_project_root_to_the_checkout(uri, expected):
    assert local_path(uri, project_root=PROJECT) == expected


def test_local_path_outside_the_image_project_root_is_refused():
    with pytest.raises(ValueError, match=r"'local:///usr/lib/x\.py' is outside the job image's project root"):
        local_path("local:///usr/lib/x.py", project_root=PROJECT)


def test_local_paths_follow_the_image_contract_of_the_manifest():
    image = ImageContract(app_root="/app")
    assert local_path("local:///app/spark_jobs/a.py", project_root=PROJECT, image_contract=image) == (
        "/srv/project/spark_jobs/a.py")
    with pytest.raises(ValueError, match=r"'local:///opt/spark/work-dir/a\.py' is outside the job image's "
                                         r"project root /app"):
        local_path("local:///opt/spark/work-dir/a.py", project_root=PROJECT, image_contract=image)
    job = SparkJob(name="job", main_application_file="spark_jobs/a.py", image="i", py_files=("deps/b.zip",))
    manifest = render_manifest(job, name="job-20130630-0123abcd", namespace="ml-dev", image_contract=image)
    arguments = spark_submit_arguments(manifest, project_root=PROJECT, image_contract=image)
    assert (arguments["application"], arguments["py_files"]) == ("/srv/project/spark_jobs/a.py",
                                                                 "/srv/project/deps/b.zip")


def test_the_project_root_is_the_checkout_holding_spark_jobs_and_plugins():
    from sparkapp.hooks.local import PROJECT_ROOT

    assert (PROJECT_ROOT / "spark_jobs").is_dir() and (PROJECT_ROOT / "plugins" / "sparkapp").is_dir()
    assert PROJECT_ROOT == Path(__file__).resolve().parents[4]
    environment = LocalSparkApplicationClient(state_dir=PROJECT)._environment()
    python_path = environment["PYTHONPATH"].split(os.pathsep)
    assert python_path[:2] == [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]


def test_missing_application_is_not_found(tmp_path):
    client = LocalSparkApplicationClient(state_dir=tmp_path)
    with pytest.raises(ApplicationNotFound, match="SparkApplication nope not found in namespace ml-dev"):
        client.get_application("nope", "ml-dev")


@pytest.fixture
def job_dir(tmp_path) -> Path:
    jobs = tmp_path / "project" / "spark_jobs"
    jobs.mkdir(parents=True)
    (jobs / "write_count.py").write_text(textwrap.dedent("""
        import sys
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        count = spark.range(int(sys.argv[1])).count()
        open(sys.argv[2], "w").write(f"{spark.sparkContext.appName} {count}")
        spark.stop()
    """))
    (jobs / "fail.py").write_text("raise SystemExit('bad input: no such partition')\n")
    return jobs.parent


def test_local_backend_runs_the_manifest_with_spark_submit(tmp_path, job_dir):
    client = LocalSparkApplicationClient(state_dir=tmp_path / "state", project_root=job_dir)
    out = tmp_path / "out.txt"
    manifest = manifest_for("spark_jobs/write_count.py", arguments=["42", str(out)])
    returned = client.create_application(manifest)

    assert out.read_text() == "job-20130630-0123abcd 42"
    assert states.application_state(returned) == states.COMPLETED
    stored = client.get_application("job-20130630-0123abcd", "ml-dev")
    assert stored == returned
    assert stored["spec"] == manifest["spec"]
    assert stored["status"]["submissionAttempts"] == 1


def test_failed_job_is_recorded_as_failed_with_the_reason(tmp_path, job_dir):
    client = LocalSparkApplicationClient(state_dir=tmp_path / "state", project_root=job_dir)
    returned = client.create_application(manifest_for("spark_jobs/fail.py"))
    assert states.application_state(returned) == states.FAILED
    assert "Error code is: 1" in states.error_message(returned)
    assert "bad input: no such partition" in states.error_message(returned)
    stored = client.get_application("job-20130630-0123abcd", "ml-dev")
    assert states.application_state(stored) == states.FAILED


@pytest.mark.parametrize(("returncode", "signal_number"), [(-15, 15), (-9, 9), (143, 15), (130, 2), (1, None),
                                                           (0, None), (None, None)])
def test_stopping_signal_from_the_exit_status(returncode, signal_number):
    from sparkapp.hooks.local import stopping_signal

    assert stopping_signal(returncode) == signal_number


def is_spark_submit(process, program: str) -> bool:
    """Is ``process`` the spark-submit of ``program`` (not, say, the test session's own Spark JVM)?"""
    import psutil

    try:
        command = " ".join(process.cmdline())
    except psutil.Error:  # gone, or a zombie of an earlier test
        return False
    return "org.apache.spark.deploy.SparkSubmit" in command and program in command


def test_spark_submit_stopped_by_a_signal_fails_the_task_and_records_failed(tmp_path, job_dir):
    import os
    import signal
    import threading
    import time

    import psutil

    from sparkapp.hooks.local import SparkSubmitInterrupted

    (job_dir / "spark_jobs" / "sleep.py").write_text(
        "import time\nfrom pyspark.sql import SparkSession\n"
        "SparkSession.builder.getOrCreate()\ntime.sleep(120)\n")
    client = LocalSparkApplicationClient(state_dir=tmp_path / "state", project_root=job_dir)
    outcome = {}

    def submit() -> None:
        try:
            outcome["returned"] = client.create_application(manifest_for("spark_jobs/sleep.py"))
        except Exception as exc:
            outcome["raised"] = exc

    thread = threading.Thread(target=submit)
    thread.start()
    deadline = time.monotonic() + 120
    while True:  # the spark-submit JVM that the hook started, once the driver runs the job
        submits = [p for p in psutil.Process().children(recursive=True)
                   if is_spark_submit(p, str(job_dir / "spark_jobs" / "sleep.py"))]
        if submits or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert submits, "spark-submit did not start"
    time.sleep(3)
    os.kill(submits[0].pid, signal.SIGTERM)  # what stopping the task does to its process group
    thread.join(timeout=60)

    assert "returned" not in outcome
    assert isinstance(outcome["raised"], SparkSubmitInterrupted)
    assert str(outcome["raised"]).startswith("spark-submit of job-20130630-0123abcd was stopped by signal 15")
    stored = client.get_application("job-20130630-0123abcd", "ml-dev")
    assert states.application_state(stored) == states.FAILED  # terminal: the retry replaces it
