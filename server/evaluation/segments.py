"""Performance by segment: for each categorical input, the metric on the rows of each level, with
the count, so a weak segment shows even when the overall score is good."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .outputs import Outputs, Task

MAX_LEVELS = 20
MISSING, OTHER = "(missing)", "(other)"


def segment_metrics(task: Task, column: pd.Series, y: np.ndarray,
                    outputs: Outputs) -> dict[str, Any]:
    """Accuracy per level for classifiers, mean absolute error for regressors; the
    ``MAX_LEVELS - 1`` most frequent levels each, the rest as one "(other)" segment."""
    levels = column.astype(object).where(column.notna(), MISSING).map(str)
    counts = levels.value_counts(sort=True)
    kept = list(counts.index[:MAX_LEVELS - 1]) if len(counts) > MAX_LEVELS else list(counts.index)
    levels = levels.where(levels.isin(kept), OTHER)
    metric = "mae" if task.kind == "regression" else "accuracy"
    rows = []
    for level in kept + ([OTHER] if len(counts) > len(kept) else []):
        mask = (levels == level).to_numpy()
        if metric == "mae":
            value = float(np.abs(y[mask].astype(float)
                                 - outputs.labels[mask].astype(float)).mean())
        else:
            value = float(skm.accuracy_score(y[mask], outputs.labels[mask]))
        rows.append({"level": level, "count": int(mask.sum()), "value": value})
    return {"column": str(column.name), "metric": metric, "levels": rows}
