"""Holdout metrics computed by the server itself, so versions are compared on equal terms."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .runtime import LoadedModel

LOWER_IS_BETTER = {"log_loss", "mae", "rmse", "calibration_error"}
# what :func:`label_metrics` gives, per model kind (roc_auc and the rest need probabilities)
METRICS_BY_KIND = {"classification": ("accuracy", "f1_macro", "roc_auc", "log_loss",
                                      "calibration_error"),
                   "regression": ("r2", "mae", "rmse")}
METRICS = METRICS_BY_KIND["classification"] + METRICS_BY_KIND["regression"]
CALIBRATION_BINS = 10


def evaluate(model: LoadedModel, features: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    """Standard metrics of ``model`` on a labelled holdout frame."""
    pred = model.predict(features, proba=True)
    if pred.failures:
        raise ValueError(f"the model could not score {len(pred.failures)} holdout rows")
    output = model.signature.output
    return label_metrics(output.kind, list(output.classes or ()), target.to_numpy(),
                         pred.labels, pred.probabilities)


def label_metrics(kind: str, classes: list[Any], y: np.ndarray, labels: np.ndarray,
                  probabilities: np.ndarray | None) -> dict[str, float]:
    """The standard metrics of predictions against true values: one function for the holdout at
    registration and for live quality from recorded outcomes, so the two compare on equal terms.
    ``probabilities``: rows × ``classes`` (classifiers), or None."""
    if kind == "regression":
        err = y.astype(float) - labels.astype(float)
        return {"r2": float(skm.r2_score(y, labels)), "mae": float(np.abs(err).mean()),
                "rmse": float(np.sqrt((err ** 2).mean()))}
    y = _align_labels(y, classes)
    out: dict[str, Any] = {"accuracy": float(skm.accuracy_score(y, labels)),
                           "f1_macro": float(skm.f1_score(y, labels, average="macro"))}
    if probabilities is not None and len(set(y)) > 1:
        probs = probabilities
        if len(classes) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y == classes[1], probs[:, 1]))
        else:
            out["roc_auc"] = float(skm.roc_auc_score(y, probs, multi_class="ovr", labels=classes))
        out["log_loss"] = float(skm.log_loss(y, probs, labels=classes))
        out["calibration_error"] = calibration_error(y, probs, classes)
    return out


def calibration_bins(y: np.ndarray, probs: np.ndarray, classes: list[Any],
                     bins: int = CALIBRATION_BINS) -> list[dict[str, float]]:
    """Top-label reliability: rows binned by their highest probability (equal-width bins), each
    bin's mean confidence against its share of right answers, and its size."""
    confidence = probs.max(axis=1)
    correct = np.asarray(classes, dtype=object)[probs.argmax(axis=1)] == y
    edges = np.minimum((confidence * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        inside = edges == b
        if inside.any():
            out.append({"low": b / bins, "high": (b + 1) / bins, "rows": int(inside.sum()),
                        "confidence": float(confidence[inside].mean()),
                        "accuracy": float(correct[inside].mean())})
    return out


def calibration_error(y: np.ndarray, probs: np.ndarray, classes: list[Any]) -> float:
    """Expected calibration error (top label, 10 bins): the row-weighted gap between confidence
    and accuracy; 0 for a perfectly calibrated model."""
    parts = calibration_bins(np.asarray(y, dtype=object), probs, classes)
    total = sum(p["rows"] for p in parts)
    return float(sum(p["rows"] * abs(p["confidence"] - p["accuracy"]) for p in parts) / total)


def _align_labels(y: np.ndarray, classes: list[Any]) -> np.ndarray:
    """Labels read from CSV may be text where the model's classes are numbers: match them."""
    if not classes or all(c in set(classes) for c in np.unique(y)):
        return y
    as_text = {str(c): c for c in classes}
    return np.array([as_text.get(str(v), v) for v in y], dtype=object)
