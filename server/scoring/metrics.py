"""Holdout metrics computed by the server itself, so versions are compared on equal terms."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .runtime import LoadedModel


def evaluate(model: LoadedModel, features: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    """Standard metrics of ``model`` on a labelled holdout frame."""
    pred = model.predict(features, proba=True)
    if pred.failures:
        raise ValueError(f"the model could not score {len(pred.failures)} holdout rows")
    output = model.signature.output
    y = target.to_numpy()
    if output.kind == "regression":
        err = y.astype(float) - pred.labels.astype(float)
        return {"r2": float(skm.r2_score(y, pred.labels)), "mae": float(np.abs(err).mean()),
                "rmse": float(np.sqrt((err ** 2).mean()))}
    classes = list(output.classes or ())
    y = _align_labels(y, classes)
    out: dict[str, Any] = {"accuracy": float(skm.accuracy_score(y, pred.labels)),
                           "f1_macro": float(skm.f1_score(y, pred.labels, average="macro"))}
    if pred.probabilities is not None and len(set(y)) > 1:
        probs = pred.probabilities
        if len(classes) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y == classes[1], probs[:, 1]))
        else:
            out["roc_auc"] = float(skm.roc_auc_score(y, probs, multi_class="ovr", labels=classes))
        out["log_loss"] = float(skm.log_loss(y, probs, labels=classes))
    return out


def _align_labels(y: np.ndarray, classes: list[Any]) -> np.ndarray:
    """Labels read from CSV may be text where the model's classes are numbers: match them."""
    if not classes or all(c in set(classes) for c in np.unique(y)):
        return y
    as_text = {str(c): c for c in classes}
    return np.array([as_text.get(str(v), v) for v in y], dtype=object)
