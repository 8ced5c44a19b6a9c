"""Global importance from the per-row explanations: the mean absolute contribution of each input
column over the sampled holdout, the explainer's view beside permutation importance (which
measures what the score loses without a column, not how far each column moves a prediction)."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import ExplanationUnavailable
from ..scoring.runtime import LoadedModel

log = logging.getLogger(__name__)

CONTRIBUTION_ROWS = 500  # TreeSHAP costs about a millisecond a row on a 120-tree model


def mean_abs_contributions(model: LoadedModel, frame: pd.DataFrame) -> dict[str, float] | None:
    """Per input column, the mean of |contribution| over the first ``CONTRIBUTION_ROWS`` rows
    of ``frame`` (each row explained for its predicted class); None when the model has no
    exact explainer (the report then shows permutation importance alone)."""
    rows = frame.head(CONTRIBUTION_ROWS)
    try:
        explainer = model.explainer()
        labels = model.predict(rows, proba=False).labels if len(rows) else None
        explained = explainer.explain(rows, labels)
    except ExplanationUnavailable as exc:
        log.info("no contribution importance for %s: %s", model.name, exc.detail)
        return None
    means = np.abs(explained.contributions).mean(axis=0) if len(rows) else \
        np.zeros(len(explained.columns))
    return {c: float(v) for c, v in zip(explained.columns, means.tolist())}
