"""Classifier curves and tables (ROC, precision-recall, confusion matrix, reliability) and
regression residuals, each with scikit-learn's own functions. Binary classifiers: the curves of
the positive class (the second of the model's classes); multiclass: one curve per class, that
class against the rest."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from .outputs import Outputs, Task

CALIBRATION_BINS = 10
RESIDUAL_BINS = 20


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def classifier_curves(task: Task, y: np.ndarray, outputs: Outputs) -> dict[str, Any]:
    labels = list(task.classes)
    matrix = skm.confusion_matrix(y, outputs.labels, labels=labels)
    out: dict[str, Any] = {
        "confusion": {"labels": labels, "matrix": [[int(v) for v in row] for row in matrix]},
        "roc": [], "precision_recall": [], "calibration": []}
    if outputs.probabilities is None:
        return out
    shown = [1] if task.kind == "binary" else range(len(labels))
    for k in shown:
        truth = y == labels[k]
        if truth.all() or not truth.any():
            continue  # a class absent from the holdout has no curve
        p = outputs.probabilities[:, k]
        fpr, tpr, _ = skm.roc_curve(truth, p)
        precision, recall, _ = skm.precision_recall_curve(truth, p)
        prob_true, prob_pred = calibration_curve(truth, p, n_bins=CALIBRATION_BINS)
        name = str(labels[k])
        out["roc"].append({"class": name, "fpr": _floats(fpr), "tpr": _floats(tpr),
                           "auc": float(skm.auc(fpr, tpr))})
        out["precision_recall"].append({
            "class": name, "precision": _floats(precision), "recall": _floats(recall),
            "average_precision": float(skm.average_precision_score(truth, p))})
        out["calibration"].append({"class": name, "mean_predicted": _floats(prob_pred),
                                   "fraction_positive": _floats(prob_true),
                                   "bins": CALIBRATION_BINS})
    return out


def residuals(y: np.ndarray, outputs: Outputs) -> dict[str, Any]:
    """Residual = actual - predicted, per row, and their histogram."""
    predicted = outputs.labels.astype(float)
    residual = y.astype(float) - predicted
    counts, edges = np.histogram(residual, bins=RESIDUAL_BINS)
    return {"predicted": _floats(predicted), "residual": _floats(residual),
            "histogram": {"edges": _floats(edges), "counts": [int(c) for c in counts]}}
