"""A loaded model version and the one way to call it.

Labels and probabilities come from one model call: the compiled graph when the version has a
verified one, else ``predict_proba`` with labels taken as its arg-max, for the estimator families
whose ``predict`` is the arg-max of a score that ``predict_proba`` maps monotonically (rows where
two probabilities tie are asked of ``predict`` itself, so labels are always scikit-learn's).
When the model raises on a batch, the failing rows are found by bisection so that one bad row costs
a few extra calls instead of failing the whole batch, and the others can still be scored.
"""
from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

import numpy as np
import pandas as pd

from ..errors import ExplanationUnavailable
from ..types import FieldError, Signature
from . import boosting, threads
from .search_trees import PerThread

log = logging.getLogger(__name__)
NEAR_TIE = 1e-5  # compiled probabilities closer than this are settled by scikit-learn
# typed model inputs: a DataFrame, or columns as arrays (no pandas until scikit-learn needs it)
Inputs = Union[pd.DataFrame, Mapping[str, np.ndarray]]


def n_rows(inputs: Inputs) -> int:
    if isinstance(inputs, pd.DataFrame):
        return len(inputs)
    return len(next(iter(inputs.values()))) if inputs else 0


def take(inputs: Inputs, idx: np.ndarray) -> Inputs:
    if isinstance(inputs, pd.DataFrame):
        return inputs.iloc[idx]
    return {name: values[idx] for name, values in inputs.items()}


def as_frame(inputs: Inputs) -> pd.DataFrame:
    if isinstance(inputs, pd.DataFrame):
        return inputs
    # the dict's order is the signature's: naming the columns again costs ~55 µs a call
    return pd.DataFrame(dict(inputs), copy=False)

# final estimators whose predict() is the arg-max of predict_proba's monotone score (each checked
# against scikit-learn's source and by tests/scoring/test_runtime.py, ties included); a hard
# VotingClassifier has no predict_proba, so never takes this path
ARGMAX_FAMILIES = frozenset({
    "HistGradientBoostingClassifier", "GradientBoostingClassifier", "RandomForestClassifier",
    "ExtraTreesClassifier", "DecisionTreeClassifier", "ExtraTreeClassifier",
    "LogisticRegression", "LogisticRegressionCV", "KNeighborsClassifier", "GaussianNB",
    "BernoulliNB", "MultinomialNB", "ComplementNB", "CategoricalNB", "MLPClassifier",
    "LinearDiscriminantAnalysis", "BaggingClassifier", "AdaBoostClassifier",
    "CalibratedClassifierCV", "VotingClassifier",
    # XGBoost's is predict_proba > 0.5 (binary) or its arg-max, LightGBM's its arg-max; not
    # CatBoost's, whose class can follow a probability threshold set on the model
    "XGBClassifier", "LGBMClassifier",
})


def takes_argmax(final: Any) -> bool:
    """Whether ``final``'s predict() is the arg-max of its predict_proba: a family above, or a
    StackingClassifier whose own final estimator is one (its predict and predict_proba both
    call that estimator on the stacked features; the multilabel form excepted)."""
    if type(final).__name__ == "StackingClassifier":
        inner = getattr(final, "final_estimator_", None)
        return inner is not None and not isinstance(getattr(final, "_label_encoder", None),
                                                    list) and takes_argmax(final_estimator(inner))
    return type(final).__name__ in ARGMAX_FAMILIES


def flat_labels(labels: Any, n: int) -> np.ndarray:
    """predict()'s answer as one label per row (CatBoost's multiclass answers a column)."""
    labels = np.asarray(labels)
    return labels.reshape(n) if labels.ndim == 2 and labels.shape == (n, 1) else labels


def final_estimator(estimator: Any) -> Any:
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return estimator


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
    compiled: Any = None  # an OnnxRunner or NativeRunner when the version has a verified one
    # the version's stored sample, read when an explainer needs reference rows
    reference: Callable[[], pd.DataFrame | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._explainer: Any = None
        self._explain_lock = threading.Lock()
        threads.forget()  # the model may have loaded an OpenMP of its own
        self._argmax = takes_argmax(final_estimator(self.estimator)) \
            and self.has_probabilities and hasattr(self.estimator, "classes_")
        # a booster's own input types (pandas categories) restored from the fitted model
        self._adapt = boosting.adapter(self.estimator)
        self._planned: Any = None   # the plan and final estimator for scikit-learn's path
        self._planned_lock = threading.Lock()
        self._per_thread = PerThread()  # a k-NN's search tree, one per thread

    def explainer(self) -> Any:
        """This version's explainer, built on first use and kept with the loaded version;
        a model that cannot be explained raises ExplanationUnavailable every time."""
        if self._explainer is None:
            with self._explain_lock:
                if self._explainer is None:
                    self._explainer = self._build_explainer()
        if isinstance(self._explainer, str):
            raise ExplanationUnavailable(self._explainer)
        return self._explainer

    def _build_explainer(self) -> Any:
        """The explainer, or why there is none (kept, so a refusal costs nothing the next time)."""
        from .explain import build
        try:
            return build(self.estimator, self.signature,
                         self.reference() if self.reference else None, self._adapt)
        except ExplanationUnavailable as exc:
            return exc.detail
        except Exception as exc:  # a family the explainer's libraries do not read after all
            log.warning("no explainer for %s v%s: %s", self.name, self.version, exc)
            return (f"explanations are not available for this model: building its explainer "
                    f"failed ({type(exc).__name__})")

    @property
    def runtime(self) -> str:
        return self.compiled.runtime if self.compiled is not None else "sklearn"

    @property
    def has_probabilities(self) -> bool:
        return self.signature.output.probabilities

    def _call(self, inputs: Inputs, proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        n = n_rows(inputs)
        answer = self._compiled_call(inputs, proba) if self.compiled is not None else None
        if answer is None:
            answer = self._sklearn(as_frame(inputs), proba)
        labels, probs = answer
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"predict returned shape {labels.shape} for {n} rows")
        if probs is not None and probs.shape != (n, len(self.signature.output.classes or ())):
            raise ValueError(f"predict_proba returned shape {probs.shape}")
        return labels, probs

    def _compiled_call(self, inputs: Inputs,
                       proba: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The compiled graph's answer, with scikit-learn's for the rows the graph cannot settle
        (a float32 split edge, a near-tie); None when scikit-learn must answer the whole call."""
        prepared = self.compiled.prepare(inputs)
        if prepared is None:
            return None
        feed, edge = prepared
        try:
            labels, probs = self.compiled.run(feed, labels=not self._argmax)
        except Exception as exc:  # never expected; scikit-learn answers instead
            log.warning("compiled model %s v%s failed (%s); using scikit-learn", self.name,
                        self.version, type(exc).__name__)
            return None
        if self._argmax and probs is not None:
            # float32 cannot order probabilities closer than NEAR_TIE: scikit-learn decides
            labels, close = self._argmax_labels(probs, NEAR_TIE)
            edge = np.union1d(edge, close).astype(np.int64)
        probs = probs if proba else None
        if len(edge):
            sk_labels, sk_probs = self._sklearn(as_frame(take(inputs, edge)), proba)
            labels = labels.astype(object) if labels.dtype != sk_labels.dtype else labels
            labels[edge] = sk_labels
            if probs is not None:
                probs[edge] = sk_probs
        return labels, probs

    def _argmax_labels(self, probs: np.ndarray, tie: float) -> tuple[np.ndarray, np.ndarray]:
        """predict()'s labels as the arg-max of ``probs``, and the rows whose top two
        probabilities are within ``tie`` (where the arg-max alone cannot be trusted)."""
        labels = np.asarray(self.estimator.classes_).take(probs.argmax(axis=1))
        if probs.shape[1] < 2:
            return labels, np.empty(0, dtype=np.int64)
        top2 = np.partition(probs, -2, axis=1)[:, -2:]
        return labels, np.flatnonzero(top2[:, 1] - top2[:, 0] <= tie)

    def _planned_final(self) -> Any:
        """The verified plan and final estimator (:mod:`.planned_fallback`), worked out on the
        first call scikit-learn answers; False where the pipeline must run whole."""
        if self._planned is None:
            with self._planned_lock:
                if self._planned is None:
                    self._planned = self._build_planned() or False
        return self._planned

    def _build_planned(self) -> Any:
        from .planned_fallback import planned_final
        from .reference_rows import typed_reference
        if self._adapt is not None or hasattr(self.estimator, "predict_with_proba"):
            return None
        try:
            sample = typed_reference(self.signature, self.reference() if self.reference else None)
            return planned_final(self.estimator, self.signature, sample)
        except Exception as exc:  # the plain pipeline answers; nothing is lost
            log.debug("no planned fallback for %s v%s: %s", self.name, self.version, exc)
            return None

    def _sklearn(self, frame: pd.DataFrame, proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if self._adapt is not None:
            frame = self._adapt(frame)
        planned = self._planned_final()
        matrix = planned.matrix(frame) if planned else None
        if matrix is not None:
            try:
                return self._answer(planned.final, matrix, proba)
            except Exception:  # the pipeline itself says what is wrong with these rows
                pass
        return self._answer(self.estimator, frame, proba)

    def _answer(self, model: Any, inputs: Any,
                proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``model``'s labels (and probabilities) for ``inputs``: the pipeline on the typed
        frame, or its final estimator on the plan's matrix."""
        n = len(inputs)
        model = self._per_thread.of(model)
        with warnings.catch_warnings(), threads.for_rows(n):
            warnings.simplefilter("ignore")
            if proba and hasattr(model, "predict_with_proba"):  # an ONNX graph: one run
                labels, probs = model.predict_with_proba(inputs)
                return np.asarray(labels), np.asarray(probs)
            if not (proba and self._argmax):
                labels = flat_labels(model.predict(inputs), n)
                return labels, np.asarray(model.predict_proba(inputs)) if proba else None
            probs = np.asarray(model.predict_proba(inputs))
            if probs.ndim != 2 or probs.shape[0] != n:
                raise ValueError(f"predict_proba returned shape {probs.shape}")
            labels, tied = self._argmax_labels(probs, 0.0)
            if len(tied):  # the arg-max is ambiguous here: predict decides
                labels = labels.copy()
                rows = inputs.iloc[tied] if isinstance(inputs, pd.DataFrame) else inputs[tied]
                labels[tied] = flat_labels(model.predict(rows), len(tied))
        return labels, probs

    def predict(self, frame: Inputs, proba: bool = True) -> Prediction:
        """Score every row of ``frame``; rows the model raises on are isolated and reported."""
        proba = proba and self.has_probabilities
        n = n_rows(frame)
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

    def _bisect(self, frame: Inputs, idx: np.ndarray, proba: bool, ok: list, labels: list,
                probs: list, failures: list[FieldError]) -> None:
        try:
            lab, pr = self._call(take(frame, idx), proba)
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
