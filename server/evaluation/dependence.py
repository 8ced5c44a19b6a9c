"""Partial dependence: the model's average answer over the holdout rows when one input is set to
each value of a grid, the others left as they are (scikit-learn's ``kind="average"``, brute
method). Numeric inputs: the distinct values when fewer than the grid's resolution, else an even
grid between the 5th and 95th percentiles; categorical inputs: each level seen."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats.mstats import mquantiles

from ..scoring.runtime import LoadedModel
from .outputs import Task, score_frame

GRID_RESOLUTION = 20
PERCENTILES = (0.05, 0.95)


def grid_for(values: pd.Series, categorical: bool,
             resolution: int = GRID_RESOLUTION) -> list[Any]:
    present = values.dropna().to_numpy()
    if categorical:
        return [plain(v) for v in sorted(set(present.tolist()), key=_order)]
    uniques = np.unique(present.astype(float))
    if len(uniques) < resolution:
        return [float(v) for v in uniques]
    low, high = mquantiles(present.astype(float), prob=PERCENTILES, axis=0)
    if np.isclose(low, high):
        return [float(v) for v in uniques[:resolution]]
    return [float(v) for v in np.linspace(low, high, num=resolution, endpoint=True)]


def partial_dependence(model: LoadedModel, frame: pd.DataFrame, column: str, categorical: bool,
                       task: Task) -> dict[str, Any]:
    """``average`` maps a curve's name (the positive class, each class one-vs-rest for
    multiclass, or "prediction") to its value at each grid point: the mean probability, or for
    a classifier without probabilities the share of rows predicted as the class."""
    grid = grid_for(frame[column], categorical)
    trials = []
    for value in grid:
        trial = frame.copy()
        trial[column] = pd.Series([value] * len(frame), dtype=frame[column].dtype if categorical else float)
        trials.append(trial)
    outputs = score_frame(model, pd.concat(trials, ignore_index=True))
    n = len(frame)
    shown = [1] if task.kind == "binary" else range(len(task.classes))
    if task.kind == "regression":
        answers = outputs.labels.astype(float).reshape(len(grid), n)
        curves = {"prediction": answers.mean(axis=1)}
    elif outputs.probabilities is None:  # no probabilities: the share of rows given the class
        labels = outputs.labels.reshape(len(grid), n)
        curves = {str(task.classes[k]): (labels == task.classes[k]).mean(axis=1) for k in shown}
    else:
        probs = outputs.probabilities.reshape(len(grid), n, -1).mean(axis=1)
        curves = {str(task.classes[k]): probs[:, k] for k in shown}
    return {"column": column, "categorical": categorical, "grid": grid,
            "average": {k: [float(v) for v in c] for k, c in curves.items()}}


def plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float, np.number)) else (1, str(value))
