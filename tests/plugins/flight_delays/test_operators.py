"""The pipeline's operators: the validation gate links its Data Docs, the registration its MLflow run."""

from __future__ import annotations

from datetime import date

import pytest

from flight_delays.ingest import ingest_day, ingest_reference
from flight_delays.layout import DataLayout

DAY = date(2013, 6, 30)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> DataLayout:
    """The day and the planes reference table ingested, not validated yet."""
    layout = DataLayout(tmp_path_factory.mktemp("operators") / "data")
    ingest_day(layout, DAY)
    ingest_reference(layout)
    return layout


def test_operator_links_the_data_docs_and_returns_the_verdict(layout, monkeypatch):
    from flight_delays.operators import DataDocsLink, ValidatePartitionsOperator
    from tests.plugins.sparkapp.fakes import RecordingTaskInstance

    monkeypatch.setenv("FLIGHT_DELAYS_DATA_ROOT", str(layout.root))
    ti = RecordingTaskInstance()
    operator = ValidatePartitionsOperator(task_id="validate", ingested={"ingested_days": [DAY.isoformat()]})
    summary = operator.execute({"ti": ti})
    assert summary["passed"] is True and summary["partitions"] == 3  # the day's two, and the planes
    index = layout.data_docs / "index.html"
    assert ti.pushed == [(DataDocsLink().xcom_key, index.as_uri())] and index.exists()
    assert [link.name for link in ValidatePartitionsOperator.operator_extra_links] == ["Data Docs"]
