"""The embedded default's environment, defined once: Airflow, Spark and MLflow on one machine.

:func:`embedded_default` is what ``make demo``, ``make airflow``, the tests and the benchmarks run
with: the Airflow home, data root and MLflow store under one local folder (``.local/`` unless told
otherwise), the project's DAG and plugin folders, the ``spark_default`` connection to Spark in local
mode, and the interpreter that Spark's Python workers use.

``python -m devtools.environment COMMAND ...`` runs a command with it (what the caller's environment
already sets wins): the Makefile runs ``airflow db migrate`` and the developer tools this way.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from flight_delays.settings import LOCAL_DIR, PROJECT_ROOT

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

#: Spark in local mode with two threads (the machine has two cores), as the Airflow connection
#: ``spark_default``: without it the Spark provider silently submits to YARN.
LOCAL_SPARK_CONNECTION = {"conn_type": "spark", "host": "local[2]"}


def embedded_default(local_dir: Path = LOCAL_DIR, *, python: str = sys.executable) -> dict[str, str]:
    """The environment of the embedded default, with everything it writes under ``local_dir``.

    :param local_dir: the folder of the Airflow home, data root, MLflow store and local Spark
        applications' records.
    :param python: the interpreter of Spark's Python workers (this virtualenv's).
    """
    return {
        "AIRFLOW_HOME": str(local_dir / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(LOCAL_SPARK_CONNECTION),
        "FLIGHT_DELAYS_DATA_ROOT": str(local_dir / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{local_dir / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_LOCATION": str(local_dir / "mlflow" / "artifacts"),
        "SPARKAPP_LOCAL_STATE_DIR": str(local_dir / "spark-applications"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": python,
        # Tasks and Spark jobs import flight_delays, sparkapp and spark_jobs.
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT)]),
    }


def with_embedded_default(base: Mapping[str, str], local_dir: Path = LOCAL_DIR, *,
                          python: str = sys.executable) -> dict[str, str]:
    """``base`` over the embedded default: what ``base`` sets wins, except that the project's folders
    are always on its ``PYTHONPATH`` (added in front when missing)."""
    defaults = embedded_default(local_dir, python=python)
    env = {**defaults, **base}
    python_path = [p for p in env["PYTHONPATH"].split(os.pathsep) if p]
    missing = [p for p in defaults["PYTHONPATH"].split(os.pathsep) if p not in python_path]
    env["PYTHONPATH"] = os.pathsep.join([*missing, *python_path])
    return env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m devtools.environment COMMAND [ARG ...]", file=sys.stderr)
        return 2
    os.execvpe(argv[0], argv, with_embedded_default(os.environ))
    return 127  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
