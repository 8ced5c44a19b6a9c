"""Estimators that misbehave on purpose, for deployment tests (registered as trusted pickles)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class FailsOnHighCharges(ClassifierMixin, BaseEstimator):
    """The demo model, except that it raises on rows with monthly_charges above a limit: it passes
    every gate (the samples stay below) and fails on live traffic that goes above."""

    def __init__(self, inner=None, limit: float = 1000.0):
        self.inner = inner
        self.limit = limit

    def fit(self, X, y):
        self.classes_ = self.inner.classes_
        self.feature_names_in_ = self.inner.feature_names_in_
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _check(self, X):
        if (np.asarray(X["monthly_charges"], dtype=float) > self.limit).any():
            raise ValueError("charges out of range")

    def predict(self, X):
        self._check(X)
        return self.inner.predict(X)

    def predict_proba(self, X):
        self._check(X)
        return self.inner.predict_proba(X)


class WrongShape(FailsOnHighCharges):
    """Returns one prediction too few."""

    def predict(self, X):
        return self.inner.predict(X)[:-1] if len(X) > 1 else np.array([])
