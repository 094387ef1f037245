"""The metrics every model is judged by, with hand-computed values, and the plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flight_delays.evaluation import as_probabilities, auc_by_group, binary_metrics, save_plots

LABELS = [1, 0, 1, 0]
PROBABILITIES = [0.9, 0.1, 0.8, 0.3]


def test_binary_metrics_exact_values():
    assert binary_metrics(LABELS, PROBABILITIES) == pytest.approx({
        "auc": 1.0,
        "pr_auc": 1.0,
        "log_loss": 0.1976349,  # -(ln 0.9 + ln 0.9 + ln 0.8 + ln 0.7) / 4
        "brier": 0.0375,  # (0.01 + 0.01 + 0.04 + 0.09) / 4
        "positive_rate": 0.5,
        "rows": 4.0,
    }, rel=1e-6)
    # One pair out of order: AUC 3/4.
    assert binary_metrics([1, 0, 1, 0], [0.9, 0.6, 0.5, 0.1])["auc"] == pytest.approx(0.75)


def test_predictions_of_any_shape_become_one_probability_per_row():
    expected = np.array([0.1, 0.2])
    assert np.array_equal(as_probabilities(pd.DataFrame({"p": [0.1, 0.2]})), expected)
    assert np.array_equal(as_probabilities(pd.Series([0.1, 0.2])), expected)
    with pytest.raises(ValueError, match=r"one probability per row, got predictions of shape \(2, 2\)"):
        as_probabilities(np.ones((2, 2)))


def test_scoring_needs_both_outcomes_and_matching_lengths():
    with pytest.raises(ValueError, match="need both outcomes to be scored; all 3 are \\[0\\]"):
        binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="3 labels but 2 probabilities"):
        binary_metrics([0, 1, 0], [0.1, 0.2])


def test_auc_by_group_skips_small_or_one_sided_groups():
    labels = [1, 0] * 30 + [0] * 60 + [1, 0]
    probabilities = [0.9, 0.1] * 30 + [0.2] * 60 + [0.4, 0.6]
    groups = ["AA"] * 60 + ["B6"] * 60 + ["HA"] * 2
    assert auc_by_group(labels, probabilities, groups) == {
        "AA": {"rows": 60, "positive_rate": 0.5, "auc": 1.0},
        "B6": {"rows": 60, "positive_rate": 0.0, "auc": None},  # no delayed flight: no AUC
        "HA": {"rows": 2, "positive_rate": 0.5, "auc": None},  # too few flights
    }


def test_plots_are_png_files(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    written = save_plots(labels, rng.uniform(size=200), {"distance": 2.0, "temp": 1.0}, tmp_path)
    assert [p.name for p in written] == ["roc_curve.png", "pr_curve.png", "calibration.png",
                                         "feature_importance.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)
