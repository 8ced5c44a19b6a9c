"""Permutation importance of each input column: how much the task's score drops when that
column's values are shuffled. The same draws as scikit-learn's ``permutation_importance`` with
the same seed (one seed for every column, the shuffles compounding over the repeats), but asked
of the version through the scoring path, so it holds for any registered format."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ..scoring.runtime import LoadedModel
from .outputs import Outputs, Task, score, score_frame

N_REPEATS = 5


def permutation_importance(model: LoadedModel, frame: pd.DataFrame, y: np.ndarray, task: Task,
                           baseline: float, n_repeats: int = N_REPEATS,
                           seed: int = 0) -> list[dict[str, Any]]:
    """One entry per input, most important first: mean and standard deviation of the drop."""
    column_seed = check_random_state(seed).randint(np.iinfo(np.int32).max + 1)
    n = len(frame)
    out = []
    for name in frame.columns:
        rng = check_random_state(column_seed)
        order = np.arange(n)
        values = frame[name].to_numpy()
        trials = []
        for _ in range(n_repeats):
            rng.shuffle(order)
            values = values[order]
            trial = frame.copy()
            trial[name] = values
            trials.append(trial)
        # every repeat in one model call; the score is taken per repeat
        outputs = score_frame(model, pd.concat(trials, ignore_index=True))
        drops = []
        for r in range(n_repeats):
            part = slice(r * n, (r + 1) * n)
            probs = outputs.probabilities[part] if outputs.probabilities is not None else None
            drops.append(baseline - score(task, y, Outputs(outputs.labels[part], probs)))
        out.append({"column": str(name), "mean": float(np.mean(drops)),
                    "std": float(np.std(drops)), "repeats": [float(d) for d in drops]})
    return sorted(out, key=lambda e: -e["mean"])
