"""One scoring of a holdout frame and the scores the analyses read from it, so that every analysis
asks the model the same way the gates do (``LoadedModel.predict``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..scoring.runtime import LoadedModel


@dataclass(frozen=True)
class Task:
    """What kind of output the version has and the score its importances are measured with."""

    kind: str  # "binary" | "multiclass" | "regression"
    classes: list[Any]
    metric: str  # "roc_auc" (binary), "accuracy" (multiclass), "r2" (regression)

    @classmethod
    def of(cls, model: LoadedModel) -> Task:
        out = model.signature.output
        if out.kind == "regression":
            return cls("regression", [], "r2")
        classes = list(out.classes or ())
        if len(classes) == 2 and model.has_probabilities:
            return cls("binary", classes, "roc_auc")
        return cls("multiclass" if len(classes) > 2 else "binary", classes, "accuracy")

    @property
    def positive(self) -> Any:
        return self.classes[1] if len(self.classes) == 2 else None


@dataclass(frozen=True)
class Outputs:
    labels: np.ndarray
    probabilities: np.ndarray | None


def score_frame(model: LoadedModel, frame: pd.DataFrame) -> Outputs:
    """Labels (and probabilities for classifiers) of every row; a row the model refuses fails
    the analysis, as it fails the holdout evaluation at registration."""
    pred = model.predict(frame, proba=True)
    if pred.failures:
        raise ValueError(f"the model could not score {len(pred.failures)} of {len(frame)} rows")
    return Outputs(pred.labels, pred.probabilities)


def score(task: Task, y: np.ndarray, outputs: Outputs) -> float:
    """The task's metric (higher is better), as scikit-learn's scorer of that name computes it."""
    if task.metric == "r2":
        return float(skm.r2_score(y.astype(float), outputs.labels.astype(float)))
    if task.metric == "roc_auc" and outputs.probabilities is not None:
        return float(skm.roc_auc_score(y == task.positive, outputs.probabilities[:, 1]))
    return float(skm.accuracy_score(y, outputs.labels))
