"""The scikit-learn path without its per-call preprocessing cost.

A ColumnTransformer's ``transform`` on a one-row DataFrame costs about a millisecond, more than
many models' own prediction: that is most of why a version scikit-learn answers was slower than a
plain ``predict`` in a naive app. So where the version's float64 plan (:mod:`.preprocess_plan`)
gives scikit-learn's own feature matrix bit for bit, the final estimator is called on the plan's
matrix instead of the pipeline on the DataFrame: the same numbers reach the same model code.
Kept only when that also gives the pipeline's own labels and probabilities, identically, on the
version's reference rows (a final estimator that selects columns by name, say, would not).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..types import Signature
from .preprocess_plan import NotCompiled, Plan, checked_plan


@dataclass(frozen=True)
class PlannedFinal:
    plan: Plan
    final: Any
    # the matrix in the memory layout the pipeline hands its final estimator: a matrix product
    # may round its last bit differently on a C- and an F-ordered copy of the same numbers
    fortran: bool = False

    def matrix(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The final estimator's input for ``frame``, or None when the pipeline must answer."""
        matrix = self.plan(frame)
        return np.asfortranarray(matrix) if matrix is not None and self.fortran else matrix


def planned_final(estimator: Any, signature: Signature,
                  sample: pd.DataFrame) -> PlannedFinal | None:
    """The plan and the final estimator when they answer as the pipeline does on ``sample``
    (typed reference rows), else None."""
    if not hasattr(estimator, "steps") or len(estimator.steps) < 2:
        return None   # a bare model has no preprocessing to save
    try:
        plan = checked_plan(estimator, signature, sample)
    except NotCompiled:
        return None
    final = estimator.steps[-1][1]
    # rows with a missing text the plan hands to the pipeline, as checked_plan leaves them out
    text = [c.name for c in signature.inputs if c.type == "string"]
    sample = sample.dropna(subset=text) if text else sample
    matrix = plan(sample)
    if matrix is None or not len(sample):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handed = np.asarray(estimator[:-1].transform(sample.head(2)))
    fortran = bool(handed.ndim == 2 and handed.flags.f_contiguous and
                   not handed.flags.c_contiguous)
    if fortran:
        matrix = np.asfortranarray(matrix)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            same = _same(final.predict(matrix), estimator.predict(sample))
            if same and hasattr(estimator, "predict_proba"):
                same = _same(final.predict_proba(matrix), estimator.predict_proba(sample))
        except Exception:   # the final estimator needs what the pipeline hands it
            return None
    return PlannedFinal(plan, final, fortran) if same else None


def _same(got: Any, want: Any) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if got.dtype.kind == "f" and want.dtype.kind == "f":
        return bool(np.array_equal(got, want, equal_nan=True))
    return bool(np.array_equal(got, want))
