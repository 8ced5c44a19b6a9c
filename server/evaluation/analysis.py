"""Everything the model report shows about a version's quality, computed in one pass over a
seeded sample of its registration holdout and returned as plain JSON-ready data (stored with the
version, drawn by :mod:`server.reports`, written to the XLSX)."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd

from ..scoring.runtime import LoadedModel
from .curves import classifier_curves, residuals
from .dependence import GRID_RESOLUTION, partial_dependence, plain
from .importance import N_REPEATS, permutation_importance
from .outputs import Task, score, score_frame
from .sample import SAMPLE_ROWS, SEED, holdout_sample
from .segments import segment_metrics

FORMAT = 1  # bump when the stored shape changes; older analyses are then computed again
TOP_INPUTS = 4  # partial dependence for this many inputs, the most important first
# The slot for the explainer's global importance: given the version and the sampled holdout
# inputs, the mean absolute contribution of each input column (server.scoring.explain).
ContributionImportance = Callable[[LoadedModel, pd.DataFrame], dict[str, float] | None]


def analyse(model: LoadedModel, holdout: pd.DataFrame, target: str, *,
            contributions: ContributionImportance | None = None,
            sample_rows: int = SAMPLE_ROWS, seed: int = SEED) -> dict[str, Any]:
    """The analysis of ``model`` on ``holdout`` (inputs plus the ``target`` column)."""
    task = Task.of(model)
    signature = model.signature
    frame, y = holdout_sample(holdout, signature.names, target, task.classes, sample_rows, seed)
    if len(frame) == 0:
        raise ValueError("the holdout set has no labelled rows")
    if task.metric == "roc_auc" and len(set(y.tolist())) < 2:  # AUC needs both classes
        task = Task(task.kind, task.classes, "accuracy")
    outputs = score_frame(model, frame)
    baseline = score(task, y, outputs)
    importance = permutation_importance(model, frame, y, task, baseline, seed=seed)
    categorical = {c.name for c in signature.inputs if c.is_categorical}
    top = [e["column"] for e in importance[:TOP_INPUTS]]
    data: dict[str, Any] = {
        "format": FORMAT, "computed_at": datetime.now(timezone.utc).isoformat(),
        "holdout_rows": int(len(holdout)), "sample_rows": int(len(frame)), "seed": seed,
        "kind": task.kind, "classes": [plain(c) for c in task.classes],
        "positive_class": plain(task.positive) if task.kind == "binary" else None,
        "metric": task.metric, "score": baseline,
        "importance": {"metric": task.metric, "repeats": N_REPEATS, "columns": importance},
        "dependence": {"resolution": GRID_RESOLUTION, "curves": [
            partial_dependence(model, frame, name, name in categorical, task) for name in top]},
        "segments": [segment_metrics(task, frame[c.name], y, outputs)
                     for c in signature.inputs if c.is_categorical],
    }
    if contributions is not None:   # else left out: computed later (contribution_importance)
        data["contribution_importance"] = _contribution_importance(contributions, model, frame)
    if task.kind == "regression":
        data["residuals"] = residuals(y, outputs)
    else:
        data.update(classifier_curves(task, y, outputs))
    return _finite(data)


def _finite(value: Any) -> Any:
    """NaN and infinities as None: JSON (and PostgreSQL's JSONB) has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def unavailable(reason: str) -> dict[str, Any]:
    """What is stored when a version's analysis cannot be computed, so it is not tried again."""
    return {"format": FORMAT, "computed_at": datetime.now(timezone.utc).isoformat(),
            "unavailable": reason}


def contribution_importance(model: LoadedModel, holdout: pd.DataFrame, target: str,
                            stored: dict[str, Any],
                            contributions: ContributionImportance) -> list[dict[str, Any]] | None:
    """The mean absolute contributions of an analysis stored without them, over the same
    seeded sample of the same holdout (a tree model's explainer is built on first use, not at
    registration: see :func:`server.scoring.explain.cheap_to_explain`)."""
    task = Task.of(model)
    frame, _ = holdout_sample(holdout, model.signature.names, target, task.classes,
                              SAMPLE_ROWS, int(stored.get("seed", SEED)))
    return _finite(_contribution_importance(contributions, model, frame))


def _contribution_importance(contributions: ContributionImportance | None, model: LoadedModel,
                             frame: pd.DataFrame) -> list[dict[str, Any]] | None:
    """Mean absolute contribution per input, most important first; None without an explainer
    (the report then shows permutation importance alone)."""
    values = contributions(model, frame) if contributions is not None else None
    if values is None:
        return None
    return sorted(({"column": k, "mean_abs": float(v)} for k, v in values.items()),
                  key=lambda e: -e["mean_abs"])

