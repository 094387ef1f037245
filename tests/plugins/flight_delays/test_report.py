"""The run report: the lines `make demo` prints, and what the report task writes is what is read back."""

from __future__ import annotations

from flight_delays.partitions import publish_feature_frame
from flight_delays.report import RunReport

REPORT = {
    "day": "2013-06-30",
    "rows_ingested": {"flights": 918, "weather": 72},
    "days_ingested": 42,
    "validation": {"partitions": 85, "passed": True, "warnings": 0},
    "feature_rows": 827,
    "test_metrics": {"test_auc": 0.77081, "test_pr_auc": 0.73031, "test_log_loss": 0.57421,
                     "test_brier": 0.19492, "test_rows": 2482.0},
    "model": {"model_name": "flight-delays", "version": "2", "alias": "challenger", "champion_version": "1",
              "champion_test_auc": 0.7712, "reason": "AUC gain 0.0000 below the margin 0.002"},
    "cost": {"stages": {
        "features": {"wall_seconds": 14.0, "executor_core_seconds": 28.0, "gpu_seconds": 0.0},
        "training": {"wall_seconds": 26.4, "executor_core_seconds": 52.8, "gpu_seconds": 0.0},
    }},
}


def test_the_report_reads_as_the_readme_shows_it():
    assert RunReport.from_dict(REPORT).format().splitlines() == [
        "Run report for 2013-06-30",
        "  rows ingested      918 flights, 72 weather hours (42 day(s) written)",
        "  validation         passed on 85 partition(s), 0 warning(s)",
        "  feature rows       827 for 2013-06-30",
        "  test metrics       AUC 0.7708, PR-AUC 0.7303, log loss 0.5742, Brier 0.1949 on 2482 flights",
        "  registered model   flight-delays version 2 -> @challenger (champion: v1, test AUC 0.7712 on the "
        "same days)",
        "  promotion          AUC gain 0.0000 below the margin 0.002",
        "  spark cost inputs  features 14 s, 28 executor core-s, 0 GPU-s; training 26 s, 53 executor core-s, "
        "0 GPU-s",
    ]


def test_the_report_written_is_the_report_read(tmp_path):
    from datetime import date

    from flight_delays.layout import DataLayout

    layout = DataLayout(tmp_path)
    report = RunReport.from_dict({**REPORT, "model": None, "test_metrics": None})
    report.write(layout)
    assert layout.report(date(2013, 6, 30)).path == f"{tmp_path}/reports/date=2013-06-30/report.json"
    assert RunReport.read(layout, date(2013, 6, 30)) == report
    written = {**REPORT, "model": None, "test_metrics": None}
    assert RunReport.read(layout, date(2013, 6, 30)).as_dict() == written


def test_a_run_that_did_not_train_is_reported_from_its_tasks_results(tmp_path):
    from datetime import date

    import pandas as pd

    from flight_delays.layout import DataLayout

    layout = DataLayout(tmp_path)
    publish_feature_frame(layout.feature_partition(date(2013, 6, 30)), pd.DataFrame({"x": range(7)}),
                          writer="test")
    publish_feature_frame(layout.feature_partition(date(2013, 6, 29)), pd.DataFrame({"x": range(3)}),
                          writer="test")  # another day's features are not this run's
    cost = {"application": "features-20130630-ab12", "wall_seconds": 10.0, "executors": 2,
            "executor_cores": 1, "gpus": 0, "driver_core_seconds": 10.0, "executor_core_seconds": 20.0,
            "gpu_seconds": 0.0}
    report = RunReport.build(layout, {"day": "2013-06-30", "rows": {"flights": 918, "weather": 72},
                                      "ingested_days": ["2013-06-30"]},
                             {"partitions": 3, "passed": True, "warnings": 0}, None, None,
                             costs={"validation": None, "features": cost, "training": None})
    assert report == RunReport(
        day="2013-06-30", rows_ingested={"flights": 918, "weather": 72}, days_ingested=1,
        validation={"partitions": 3, "passed": True, "warnings": 0}, feature_rows=7, test_metrics=None,
        model=None, cost={"stages": {"features": cost},
                          "total": {"wall_seconds": 10.0, "driver_core_seconds": 10.0,
                                    "executor_core_seconds": 20.0, "gpu_seconds": 0.0}})
