"""The model's contract: only what is known before departure, and plain values (no pyspark)."""

from __future__ import annotations

import subprocess
import sys

from flight_delays import contract
from tests.conftest import PROJECT_ROOT

#: Columns of a flight that are only known once it has left (or landed).
AFTER_DEPARTURE = {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"}


def test_features_are_known_before_departure_and_unique():
    assert not AFTER_DEPARTURE & set(contract.FEATURE_COLUMNS)
    assert len(contract.FEATURE_COLUMNS) == len(set(contract.FEATURE_COLUMNS)) == 22
    assert contract.LABEL_COLUMN not in contract.FEATURE_COLUMNS
    assert [name for name, _ in contract.HISTORY_RATES] == list(contract.FEATURE_COLUMNS[-3:])


def test_the_contract_imports_without_pyspark():
    probe = "import sys, flight_delays.contract; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(PROJECT_ROOT / "plugins")}, timeout=60).stdout
    assert out.strip() == "False"
