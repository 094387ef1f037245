"""``make manifests``: the run's SparkApplications as the operators would submit them, from the current
data root, valid against the released CRD (the ``crd_schema`` fixture, tests/conftest.py)."""

from __future__ import annotations

from datetime import date

import jsonschema
import pytest
import yaml


def test_validation_application_validates_the_days_the_run_ingests(tmp_path, monkeypatch):
    from devtools.manifests import render_run
    from flight_delays.ingest import ingest_day
    from flight_delays.layout import DataLayout

    def validation_arguments() -> list[str]:
        conf = {"validation_engine": "spark", "window_days": 7, "history_days": 3}
        return render_run(date(2013, 6, 30), conf)["submit_validation"]["spec"]["arguments"]

    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "data"))
    root = str(tmp_path / "data")
    bootstrap = ",".join(f"2013-06-{d:02d}" for d in range(21, 31))  # history 3 + window 7, none ingested
    assert validation_arguments() == ["--data-root", root, "--day", "2013-06-30", "--days", bootstrap,
                                      "--reference"]
    for day in range(21, 30):
        ingest_day(DataLayout.from_env(), date(2013, 6, day))
    assert validation_arguments() == ["--data-root", root, "--day", "2013-06-30", "--days", "2013-06-30",
                                      "--reference"]


def test_the_device_param_picks_the_training_profile():
    from devtools.manifests import render_run

    cpu = render_run(date(2013, 6, 30))["submit_training"]["spec"]
    cuda = render_run(date(2013, 6, 30), {"device": "cuda"})["submit_training"]["spec"]
    assert "gpu" not in cpu["executor"] and cuda["executor"]["gpu"]["quantity"] == 1
    assert cuda["arguments"][cuda["arguments"].index("--device") + 1] == "cuda"


def test_make_manifests_writes_the_runs_applications(tmp_path, crd_schema, monkeypatch):
    from devtools.manifests import main

    # The preview depends on the data root (which days a run would ingest and featurise): an empty one.
    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(tmp_path / "empty-data-root"))
    assert main(["--date", "2013-06-30", "--conf", '{"window_days": 14}', "--out", str(tmp_path)]) == 0
    folder = tmp_path / "2013-06-30"
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    assert written == ["profiles/submit_features.cpu.yaml", "profiles/submit_training.cpu.yaml",
                       "profiles/submit_training.gpu.yaml", "profiles/submit_validation.cpu.yaml",
                       "submit_features.yaml", "submit_training.yaml"]
    features = yaml.safe_load((tmp_path / "2013-06-30" / "submit_features.yaml").read_text())
    jsonschema.validate(features, crd_schema)
    arguments = features["spec"]["arguments"]
    assert arguments[arguments.index("--start-date") + 1] == "2013-06-17"  # 14-day window from the conf
    assert arguments[arguments.index("--history-start") + 1] == "2013-06-03"


def test_make_manifests_refuses_a_bad_conf(tmp_path):
    from airflow.sdk.exceptions import ParamValidationError

    from devtools.manifests import main

    with pytest.raises(ParamValidationError, match="window_days"):
        main(["--date", "2013-06-30", "--conf", '{"window_days": 2}', "--out", str(tmp_path)])
