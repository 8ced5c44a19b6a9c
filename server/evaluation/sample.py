"""A bounded, reproducible share of a holdout set: the analyses cost the same on a million rows
as on a few thousand."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..scoring.metrics import _align_labels

SAMPLE_ROWS = 2_000
SEED = 0


def holdout_sample(holdout: pd.DataFrame, names: list[str], target: str, classes: list[object],
                   limit: int = SAMPLE_ROWS, seed: int = SEED) -> tuple[pd.DataFrame, np.ndarray]:
    """Inputs and target of at most ``limit`` labelled rows, drawn with a fixed seed (all rows,
    in order, when there are no more than ``limit``)."""
    labelled = holdout[holdout[target].notna()]
    if len(labelled) > limit:
        labelled = labelled.sample(n=limit, random_state=seed)
    frame = labelled[names].reset_index(drop=True)
    y = labelled[target].to_numpy()
    return frame, _align_labels(y, classes) if classes else y.astype(float)
