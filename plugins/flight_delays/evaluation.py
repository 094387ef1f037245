"""How a model is judged: the metrics of delay probabilities against what happened, and their plots.

One implementation for everyone who scores a model: the training job (test metrics, per-carrier
breakdown, plots logged to MLflow) and the promotion gate (champion and challenger scored on the
same held-out days). Inputs are 1-D arrays; nothing here knows about Spark or MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

#: Probabilities are clipped this far from 0 and 1 before the log loss.
EPSILON = 1e-15
#: A carrier's AUC is reported only with this many test flights, of both outcomes.
MIN_GROUP_ROWS = 50


def as_probabilities(predictions) -> np.ndarray:
    """One probability per row, whatever shape a model's ``predict`` returned (Series, (n, 1) frame)."""
    import numpy as np

    values = np.asarray(predictions, dtype="float64")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"expected one probability per row, got predictions of shape {values.shape}")
    return values


def binary_metrics(labels, probabilities) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), log loss, Brier score, positive rate and row count."""
    import numpy as np
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(labels, dtype="int64")
    p = as_probabilities(probabilities)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    if len(np.unique(y)) < 2:
        raise ValueError(f"the test rows need both outcomes to be scored; all {len(y)} are {y[:1].tolist()}")
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, EPSILON, 1 - EPSILON), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "positive_rate": float(y.mean()),
        "rows": float(len(y)),
    }


def auc_by_group(labels, probabilities, groups, min_rows: int = MIN_GROUP_ROWS) -> dict[str, dict]:
    """ROC-AUC and row count per group (e.g. carrier); groups too small or with one outcome get no AUC."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y, p, g = np.asarray(labels, dtype="int64"), as_probabilities(probabilities), np.asarray(groups)
    breakdown = {}
    for group in sorted(set(g.tolist())):
        mask = g == group
        rows = int(mask.sum())
        scorable = rows >= min_rows and len(np.unique(y[mask])) == 2
        breakdown[str(group)] = {"rows": rows, "positive_rate": float(y[mask].mean()),
                                 "auc": float(roc_auc_score(y[mask], p[mask])) if scorable else None}
    return breakdown


def save_plots(labels, probabilities, importance: dict[str, float], folder: Path) -> list[Path]:
    """ROC curve, precision-recall curve, calibration and feature importance, as PNG files in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    y, p = np.asarray(labels, dtype="int64"), as_probabilities(probabilities)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(figure, name: str) -> None:
        path = folder / name
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)

    fpr, tpr, _ = roc_curve(y, p)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(fpr, tpr, label="model")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    save(figure, "roc_curve.png")

    precision, recall, _ = precision_recall_curve(y, p)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(recall, precision)
    axes.axhline(y.mean(), linestyle="--", color="grey", label="positive rate")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
    axes.legend(loc="upper right")
    save(figure, "pr_curve.png")

    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(predicted, observed, marker="o", label="model")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.set(xlabel="mean predicted probability", ylabel="observed delay rate", title="Calibration")
    axes.legend(loc="upper left")
    save(figure, "calibration.png")

    if importance:
        ranked = sorted(importance.items(), key=lambda item: item[1])
        figure, axes = plt.subplots(figsize=(6, max(3, 0.3 * len(ranked))))
        axes.barh([name for name, _ in ranked], [value for _, value in ranked])
        axes.set(xlabel="importance", title="Feature importance")
        save(figure, "feature_importance.png")
    return written
