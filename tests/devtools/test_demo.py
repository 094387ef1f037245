"""``make demo``'s entry point: it parses the DAG as the DAG processor does, and refuses a broken one."""

from __future__ import annotations

import pytest

from devtools.demo import DAG_FILE, load_dag
from flight_delays.contract import DAG_ID


def test_the_dag_file_is_the_contracts_dag():
    assert DAG_FILE.name == f"{DAG_ID}.py" and DAG_FILE.exists()
    assert load_dag().dag_id == DAG_ID


def test_a_dag_file_that_does_not_import_is_refused_naming_the_file(tmp_path):
    broken = tmp_path / f"{DAG_ID}.py"
    broken.write_text("from airflow.sdk import DAG\nimport no_such_module_here\n")
    with pytest.raises(RuntimeError, match=rf"{broken} does not import: .*no_such_module_here"):
        load_dag(broken)


def test_a_dag_file_without_the_dag_is_refused_naming_what_it_defines(tmp_path):
    other = tmp_path / "other.py"
    other.write_text("from airflow.sdk import DAG\nwith DAG(dag_id='other', schedule=None):\n    pass\n")
    with pytest.raises(RuntimeError, match=rf"{other} defines no DAG '{DAG_ID}' \(it defines \['other'\]\)"):
        load_dag(other)
