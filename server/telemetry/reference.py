"""Reference statistics of a model's inputs and outputs, taken at registration.

Drift monitoring later compares live traffic with these: quantile bins and proportions for numeric
columns (for PSI and Wasserstein), category frequencies for categorical ones, plus null rates.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..types import Signature, to_python

BINS = 10
TOP_CATEGORIES = 50


def _numeric(values: pd.Series) -> dict[str, Any]:
    clean = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    out: dict[str, Any] = {"count": int(values.size), "nulls": int(values.size - clean.size)}
    if clean.size == 0:
        return out
    qs = np.quantile(clean, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    edges = np.unique(np.quantile(clean, np.linspace(0, 1, BINS + 1)))
    counts = np.histogram(clean, bins=edges)[0] if edges.size > 1 else np.array([clean.size])
    out.update(mean=float(clean.mean()), std=float(clean.std()), min=float(clean.min()),
               max=float(clean.max()),
               quantiles=dict(zip(["p01", "p05", "p25", "p50", "p75", "p95", "p99"],
                                  map(float, qs))),
               bin_edges=[float(e) for e in edges],
               quantiles_101=[float(q) for q in np.quantile(clean, np.linspace(0, 1, 101))],
               bin_proportions=[float(c) / clean.size for c in counts])
    return out


def _categorical(values: pd.Series) -> dict[str, Any]:
    clean = values.dropna().astype(str)
    counts = clean.value_counts()
    top = counts.head(TOP_CATEGORIES)
    total = max(int(clean.size), 1)
    return {"count": int(values.size), "nulls": int(values.size - clean.size),
            "frequencies": {str(k): float(v) / total for k, v in top.items()},
            "other": float(counts.iloc[TOP_CATEGORIES:].sum()) / total}


def reference_statistics(signature: Signature, sample: pd.DataFrame,
                         predictions: np.ndarray | None) -> dict[str, Any]:
    """Statistics of the registration sample and of the model's predictions on it."""
    columns = {}
    for col in signature.inputs:
        series = sample[col.name]
        columns[col.name] = (_categorical(series) if col.type in ("string", "boolean")
                             else _numeric(series))
    out: dict[str, Any] = {"rows": int(len(sample)), "columns": columns}
    if predictions is not None:
        preds = pd.Series([to_python(p) for p in predictions])
        out["predictions"] = (_categorical(preds) if signature.output.kind == "classification"
                              else _numeric(preds))
    return out
