"""Pipeline steps as operators where their task pages link somewhere: the validation gate to the Data
Docs it builds, the registration to the MLflow run of the model it registers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator

from sparkapp.links import XComLink

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class DataDocsLink(XComLink):
    """The "Data Docs" button: the Great Expectations site of the partitions validated."""

    name = "Data Docs"


class ValidatePartitionsOperator(BaseOperator):
    """The validation gate over the partitions the ingest task wrote (see
    :func:`flight_delays.tasks.validate`).

    :param ingested: the ingest task's result (templated; usually its XComArg).
    :param engine: ``pandas`` to validate in this task, ``spark`` to judge what the validation
        SparkApplication found (templated).
    :param application: that SparkApplication's name, with ``engine="spark"`` (templated).
    """

    template_fields: Sequence[str] = ("ingested", "engine", "application")
    operator_extra_links = (DataDocsLink(),)

    def __init__(self, *, ingested: dict, engine: str = "pandas", application: str | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.ingested = ingested
        self.engine = engine
        self.application = application

    def execute(self, context: Context) -> dict:
        from flight_delays import tasks
        from flight_delays.layout import DataLayout

        index = DataLayout.from_env().data_docs / "index.html"
        # Pushed first: a failed validation is when the Data Docs matter most.
        context["ti"].xcom_push(key=DataDocsLink().xcom_key, value=index.as_uri())
        return tasks.validate(self.ingested, engine=self.engine, application=self.application)


class MlflowRunLink(XComLink):
    """The "MLflow run" button: the training run of the registered model, in the MLflow UI."""

    name = "MLflow run"


class RegisterModelOperator(BaseOperator):
    """Register the model trained by a SparkApplication (see :func:`flight_delays.tasks.register`).

    The task page links to the training's MLflow run when the MLflow UI has an address
    (:func:`flight_delays.settings.mlflow_ui_url`).

    :param application: the training SparkApplication's name (templated; usually the submit task's XCom).
    """

    template_fields: Sequence[str] = ("application",)
    operator_extra_links = (MlflowRunLink(),)

    def __init__(self, *, application: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.application = application

    def execute(self, context: Context) -> dict:
        from flight_delays import tasks
        from flight_delays.registry import mlflow_run_url

        registration = tasks.register(self.application)
        url = mlflow_run_url(registration["run_id"])
        if url:
            self.log.info("MLflow run of %s version %s: %s", registration["model_name"],
                          registration["version"], url)
            context["ti"].xcom_push(key=MlflowRunLink().xcom_key, value=url)
        return registration
