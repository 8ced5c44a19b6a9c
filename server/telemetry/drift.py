"""Drift and data quality of live inputs against the reference statistics taken at registration.

Per feature: PSI (the business-friendly score: 0.1 watch, 0.25 act) plus Jensen-Shannon distance
for categorical and normalised Wasserstein distance for numeric columns (drift at 0.1, as Evidently
and NannyML use), with null, out-of-range and unknown-category rates. Prediction drift is measured the
same way on the outputs. The dataset drifts when at least half the features do.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from scipy.spatial.distance import jensenshannon

from ..types import Signature

PSI_WATCH, PSI_DRIFT = 0.1, 0.25
DISTANCE_DRIFT = 0.1
EPS = 1e-4
MIN_ROWS = 30


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def _status(psi_value: float, distance: float | None) -> str:
    if psi_value >= PSI_DRIFT or (distance is not None and distance >= DISTANCE_DRIFT):
        return "drift"
    if psi_value >= PSI_WATCH:
        return "watch"
    return "ok"


def numeric_drift(ref: dict[str, Any], values: list[Any], minimum: float | None,
                  maximum: float | None) -> dict[str, Any]:
    arr = np.array([v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v)], dtype=float)
    n = len(values)
    out: dict[str, Any] = {"type": "numeric", "rows": n,
                           "null_rate": 1 - len(arr) / n if n else 0.0}
    if minimum is not None and maximum is not None and len(arr):
        out["out_of_range_rate"] = float(((arr < minimum) | (arr > maximum)).mean())
    edges = ref.get("bin_edges")
    if not len(arr) or not edges or len(edges) < 2:
        out.update(psi=None, wasserstein=None, status="unknown")
        return out
    inner = np.clip(arr, edges[0], edges[-1])
    counts = np.histogram(inner, bins=edges)[0]
    out["psi"] = psi(np.array(ref["bin_proportions"]), counts / counts.sum())
    quantiles = ref.get("quantiles_101")
    if quantiles:
        current = np.quantile(arr, np.linspace(0, 1, 101))
        scale = ref.get("std") or (np.ptp(quantiles) or 1.0)
        out["wasserstein"] = float(np.mean(np.abs(current - np.array(quantiles))) / scale)
    else:
        out["wasserstein"] = None
    out["mean"] = float(arr.mean())
    out["reference_mean"] = ref.get("mean")
    out["status"] = _status(out["psi"], out["wasserstein"])
    return out


def categorical_drift(ref: dict[str, Any], values: list[Any],
                      categories: tuple[Any, ...] | None) -> dict[str, Any]:
    n = len(values)
    present = [str(v) for v in values if v is not None and v == v]
    out: dict[str, Any] = {"type": "categorical", "rows": n,
                           "null_rate": 1 - len(present) / n if n else 0.0}
    if categories:
        known = {str(c) for c in categories}
        out["unknown_rate"] = sum(v not in known for v in present) / len(present) \
            if present else 0.0
    freqs = ref.get("frequencies") or {}
    if not present or not freqs:
        out.update(psi=None, jensen_shannon=None, status="unknown")
        return out
    labels = list(freqs) + ["(other)"]
    expected = np.array([freqs[k] for k in freqs] + [ref.get("other", 0.0)])
    counts = {k: 0 for k in labels}
    for v in present:
        counts[v if v in freqs else "(other)"] += 1
    actual = np.array([counts[k] for k in labels], dtype=float) / len(present)
    out["psi"] = psi(expected, actual)
    out["jensen_shannon"] = float(jensenshannon(np.clip(expected, EPS, None),
                                                np.clip(actual, EPS, None), base=2))
    out["frequencies"] = {k: float(a) for k, a in zip(labels, actual) if a > 0}
    out["status"] = _status(out["psi"], out["jensen_shannon"])
    return out


def monitor(signature: Signature, reference: dict[str, Any], inputs: Mapping[str, list[Any]],
            predictions: list[Any]) -> dict[str, Any]:
    """The drift and data-quality report of one window of logged rows: ``inputs`` holds a list
    of values per input column, ``predictions`` one prediction per row."""
    n = len(predictions)
    columns = reference.get("columns") or {}
    features: dict[str, Any] = {}
    for col in signature.inputs:
        values = inputs.get(col.name) or [None] * n
        ref = columns.get(col.name, {})
        if col.type in ("number", "integer"):
            features[col.name] = numeric_drift(ref, values, col.minimum, col.maximum)
        else:
            features[col.name] = categorical_drift(ref, values, col.categories)
    pred_ref = reference.get("predictions") or {}
    if signature.output.kind == "classification":
        prediction = categorical_drift(pred_ref, predictions, signature.output.classes)
    else:
        prediction = numeric_drift(pred_ref, predictions, None, None)
    judged = [f for f in features.values() if f["status"] != "unknown"]
    drifting = [name for name, f in features.items() if f["status"] == "drift"]
    enough = n >= MIN_ROWS and bool(reference)
    dataset_drift = enough and bool(judged) and len(drifting) * 2 >= len(judged)
    status = "insufficient data" if not enough else (
        "drift" if dataset_drift or prediction.get("status") == "drift" else
        "watch" if drifting or any(f["status"] == "watch" for f in judged) else "ok")
    return {"rows": n, "status": status, "dataset_drift": dataset_drift,
            "drifting_features": drifting, "features": features, "prediction": prediction,
            "thresholds": {"psi_watch": PSI_WATCH, "psi_drift": PSI_DRIFT,
                           "distance_drift": DISTANCE_DRIFT, "min_rows": MIN_ROWS}}
