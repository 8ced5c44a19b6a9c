"""A loaded model version and the one way to call it.

When the model raises on a batch, the failing rows are found by bisection so that one bad row costs
a few extra calls instead of failing the whole batch, and the others can still be scored.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FieldError
from .signature import Signature


@dataclass
class Prediction:
    """Outputs for the scored rows (positions into the frame), and rows the model refused."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    ok: np.ndarray
    failures: list[FieldError]


@dataclass
class LoadedModel:
    name: str
    version: int
    estimator: Any
    signature: Signature
    sha256: str
    runtime: str = "sklearn"

    @property
    def has_probabilities(self) -> bool:
        return self.signature.output.probabilities

    def _call(self, frame: pd.DataFrame, proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = np.asarray(self.estimator.predict(frame))
            probs = np.asarray(self.estimator.predict_proba(frame)) if proba else None
        if labels.ndim != 1 or labels.shape[0] != len(frame):
            raise ValueError(f"predict returned shape {labels.shape} for {len(frame)} rows")
        if probs is not None and probs.shape != (len(frame), len(self.signature.output.classes or ())):
            raise ValueError(f"predict_proba returned shape {probs.shape}")
        return labels, probs

    def predict(self, frame: pd.DataFrame, proba: bool = True) -> Prediction:
        """Score every row of ``frame``; rows the model raises on are isolated and reported."""
        proba = proba and self.has_probabilities
        n = len(frame)
        if n == 0:
            width = len(self.signature.output.classes or ())
            return Prediction(np.empty(0, dtype=object), np.empty((0, width)) if proba else None,
                              np.empty(0, dtype=np.int64), [])
        try:
            labels, probs = self._call(frame, proba)
            return Prediction(labels, probs, np.arange(n), [])
        except Exception:
            pass
        ok_parts: list[np.ndarray] = []
        label_parts: list[np.ndarray] = []
        prob_parts: list[np.ndarray] = []
        failures: list[FieldError] = []
        self._bisect(frame, np.arange(n), proba, ok_parts, label_parts, prob_parts, failures)
        ok = np.concatenate(ok_parts) if ok_parts else np.empty(0, dtype=np.int64)
        labels = np.concatenate(label_parts) if label_parts else np.empty(0, dtype=object)
        probs = (np.concatenate(prob_parts) if prob_parts else None) if proba else None
        order = np.argsort(ok, kind="stable")
        return Prediction(labels[order], probs[order] if probs is not None else None, ok[order],
                          sorted(failures, key=lambda f: f.row or 0))

    def _bisect(self, frame: pd.DataFrame, idx: np.ndarray, proba: bool, ok: list, labels: list,
                probs: list, failures: list[FieldError]) -> None:
        try:
            lab, pr = self._call(frame.iloc[idx], proba)
        except Exception as exc:
            if len(idx) == 1:
                failures.append(FieldError(f"the model could not score this row "
                                           f"({type(exc).__name__})", row=int(idx[0])))
                return
            mid = len(idx) // 2
            self._bisect(frame, idx[:mid], proba, ok, labels, probs, failures)
            self._bisect(frame, idx[mid:], proba, ok, labels, probs, failures)
            return
        ok.append(idx)
        labels.append(lab)
        if pr is not None:
            probs.append(pr)
