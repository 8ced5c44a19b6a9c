"""Per-row explanations: how much each input column moved a row's prediction from the base value.

Exact methods only, each checked when the explainer is built:
- tree ensembles (scikit-learn's forests, extra trees, gradient boosting, histogram gradient
  boosting; XGBoost, LightGBM, CatBoost): path-dependent TreeSHAP. scikit-learn's trees are
  explained from per-leaf tables (:mod:`.treeshap_tables`, shap's values at a tenth of its cost)
  where a C compiler is at hand and the paths are short enough; else by ``shap``'s TreeExplainer
  (which hands the boosting libraries to their own exact contribution code); where shap is not
  installed or does not read the model, scikit-learn's trees are translated into a LightGBM
  booster whose contribution code gives the same values (:mod:`.lightgbm_shap`);
- linear models: ``w_j (z_j - mean z_j)`` against the mean of the version's stored sample, with
  base ``b + w . mean z`` (against zero when the version has no sample).
A Pipeline's final estimator is explained on its transformed features, and the contributions of
the features one input produced are summed back to that input (:mod:`.lineage`); features that
mix inputs are refused. Built once per loaded version and kept with it in the model cache.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import ExplanationUnavailable
from ..types import Explanation, Signature, to_python
from . import boosting, lightgbm_shap, treeshap_tables
from .lineage import check_owners, feature_owners, group_matrix
from .preprocess_plan import NotCompiled, checked_plan
from .reference_rows import typed_reference

TOLERANCE = 1e-6
TREE_FAMILIES = frozenset({
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
    "ExtraTreesRegressor", "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
    "DecisionTreeClassifier", "DecisionTreeRegressor",
    "XGBClassifier", "XGBRegressor", "LGBMClassifier", "LGBMRegressor",
    "CatBoostClassifier", "CatBoostRegressor"})
# outputs are probabilities (averaged leaf frequencies), not margins
PROBABILITY_TREES = frozenset({"RandomForestClassifier", "ExtraTreesClassifier",
                               "DecisionTreeClassifier"})
# decision_function / predict is X @ coef_.T + intercept_
LINEAR_FAMILIES = frozenset({
    "LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
    "Lars", "LassoLars", "BayesianRidge", "ARDRegression", "HuberRegressor", "SGDRegressor",
    "LinearSVR", "LogisticRegression", "LogisticRegressionCV", "SGDClassifier", "LinearSVC",
    "RidgeClassifier", "RidgeClassifierCV", "Perceptron"})
LOGISTIC = frozenset({"LogisticRegression", "LogisticRegressionCV"})


@dataclass
class Explainer:
    """One version's explainer: the final estimator's feature contributions, summed to inputs."""

    columns: list[str]
    pre: Any                      # the Pipeline's preprocessing, or None for a bare estimator
    groups: np.ndarray            # features × inputs
    features: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # Z -> (phi, base) per class
    output: str
    method: str
    classes: list[Any] | None     # a classifier's classes (the phi's last axis when 3-D)
    binary_positive: bool         # a binary classifier explained for its positive class
    adapt: Callable[[pd.DataFrame], pd.DataFrame] | None = None   # a booster's input types
    # the preprocessing as float64 numpy work, verified bit for bit against ``pre`` (a
    # ColumnTransformer costs about a millisecond on one row): None where it does not apply
    plan: Callable[[pd.DataFrame], np.ndarray | None] | None = None

    def transform(self, frame: pd.DataFrame) -> Any:
        if self.adapt is not None:
            frame = self.adapt(frame)
        if self.pre is None:
            return frame
        if self.plan is not None:
            matrix = self.plan(frame)
            if matrix is not None:
                return matrix
        return self.pre.transform(frame)

    def explain(self, frame: pd.DataFrame, labels: np.ndarray | None = None) -> Explanation:
        """Contributions for every row of ``frame`` (typed inputs, signature order); a
        multiclass row is explained for its predicted class (``labels``)."""
        n = len(frame)
        values = [list(row) for row in zip(*(map(_cell, frame[c].tolist()) for c in self.columns))]
        if n == 0:
            return Explanation(self.columns, np.empty(0), np.empty((0, len(self.columns))),
                               [], self.output, self.method, [] if self.classes else None)
        phi, base = self.features(self.transform(frame))
        explained: list[Any] | None = None
        if phi.ndim == 3:     # rows × features × classes: the predicted class (positive if binary)
            if self.binary_positive:
                pick = np.ones(n, dtype=np.int64)
            else:
                index = {c: i for i, c in enumerate(self.classes or [])}
                pick = np.array([index[to_python(v)] for v in np.asarray(labels).tolist()])
            phi = phi[np.arange(n), :, pick]
            base = base[pick] if base.ndim == 1 else base[np.arange(n), pick]
            explained = [self.classes[i] for i in pick.tolist()] if self.classes else None
        elif self.classes is not None:
            explained = [self.classes[-1]] * n
        base = np.broadcast_to(np.asarray(base, dtype=np.float64), (n,)).copy()
        return Explanation(self.columns, base, phi @ self.groups, values, self.output,
                           self.method, explained)


def cheap_to_explain(estimator: Any) -> bool:
    """A linear model's explainer costs a transform of the sample: built when the version
    loads. A tree ensemble's parses every tree (and imports shap): built on first use."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    return type(final).__name__ in LINEAR_FAMILIES


def build(estimator: Any, signature: Signature, reference: pd.DataFrame | None = None,
          adapt: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Explainer:
    """The explainer for a fitted model, checked on reference rows: base + contributions must
    equal the raw output within TOLERANCE, else explanations are refused for this model."""
    columns = signature.names
    pre, final = (estimator[:-1], estimator[-1]) if hasattr(estimator, "steps") else \
        (None, estimator)
    family = type(final).__name__
    frame = typed_reference(signature, reference)
    adapted = adapt(frame) if adapt is not None else frame
    if pre is not None:
        owners = feature_owners(pre, columns)
        check_owners(pre, adapted, owners)
    else:
        owners = [frozenset([c]) for c in columns]
    groups = group_matrix(owners, columns)
    classes = [to_python(c) for c in final.classes_] if hasattr(final, "classes_") else None
    z_ref = _dense(adapted if pre is None else pre.transform(adapted))
    if family in TREE_FAMILIES:
        features, output, method = _trees(final, family, classes)
    elif family in LINEAR_FAMILIES and hasattr(final, "coef_"):
        sample = typed_reference(signature, reference, None) if reference is not None else frame
        sample = adapt(sample) if adapt is not None else sample
        z_all = _dense(sample if pre is None else pre.transform(sample))
        features, output, method = _linear(final, family, classes, z_all, reference is not None)
    else:
        raise ExplanationUnavailable(
            f"explanations are not available for this model: {family} has no exact method "
            "here (tree ensembles and linear models have one)")
    explainer = Explainer(columns, pre, groups, features, output, method, classes,
                          binary_positive=classes is not None and len(classes) == 2,
                          adapt=adapt, plan=_plan(estimator, signature, frame)
                          if pre is not None and adapt is None else None)
    _check_additive(explainer, final, family, frame, z_ref)
    return explainer


def _cell(value: Any) -> Any:
    """A typed input cell as a plain Python value (None for a missing one)."""
    if value is None or value is pd.NA or value is pd.NaT or \
            (isinstance(value, float) and value != value):
        return None
    return to_python(value)


def _plan(estimator: Any, signature: Signature,
          frame: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray | None] | None:
    """The compiled path's float64 preprocessing plan when it reproduces the pipeline's
    transform bit for bit on the reference rows, else None (scikit-learn transforms)."""
    try:
        return checked_plan(estimator, signature, frame)
    except NotCompiled:
        return None


def _dense(matrix: Any) -> Any:
    if isinstance(matrix, pd.DataFrame):
        return matrix
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix)


def _trees(final: Any, family: str, classes: list[Any] | None) -> tuple[Any, str, str]:
    if family.startswith("HistGradientBoosting") and \
            np.any(getattr(final, "is_categorical_", None) is not None and final.is_categorical_):
        raise ExplanationUnavailable(
            "explanations are not available for this model: its native categorical splits "
            "are not read exactly by TreeSHAP; one-hot or ordinal encode the categories instead")
    output = _tree_output(family, classes)
    tables = treeshap_tables.tables(final, family)
    if tables is not None:
        return (lambda z: tables(_dense(z))), output, (
            "tree SHAP, exact (path-dependent, from per-leaf tables as in Fast TreeSHAP v2)")
    tree, refused = _shap_tree(final)
    if tree is None:   # shap missing or refusing the model: scikit-learn's trees via LightGBM
        fast = lightgbm_shap.translate(final, family)
        if fast is None:
            raise ExplanationUnavailable(refused)
        method = ("tree SHAP, exact (path-dependent, computed by LightGBM's pred_contrib on "
                  "the translated trees)")
        return (lambda z: fast(_dense(z))), output, method
    lock = threading.Lock()   # shap's explainer keeps per-call state

    def features(z: Any) -> tuple[np.ndarray, np.ndarray]:
        with lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phi = np.asarray(tree.shap_values(_dense(z), check_additivity=False),
                             dtype=np.float64)
        return phi, np.asarray(tree.expected_value, dtype=np.float64).reshape(-1) \
            if np.ndim(tree.expected_value) else np.asarray(tree.expected_value)

    return features, output, "tree SHAP, exact (shap TreeExplainer, path-dependent)"


def _shap_tree(final: Any) -> tuple[Any, str]:
    """shap's path-dependent TreeExplainer (the faster engine, measured in bench/explain.py),
    or None and why not: shap is not installed, or it does not read this model (multiclass
    GradientBoostingClassifier)."""
    try:
        import shap
    except ImportError:
        return None, "explanations need the shap library: install scorebridge[explain]"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return shap.TreeExplainer(final, feature_perturbation="tree_path_dependent",
                                      model_output="raw"), ""
    except Exception as error:   # shap's InvalidModelError and the like: its own words
        return None, f"explanations are not available for this model: shap cannot read it " \
                     f"({type(error).__name__})"


def _tree_output(family: str, classes: list[Any] | None) -> str:
    if classes is None:
        return "prediction"
    if family in PROBABILITY_TREES:
        return "probability"
    return "log-odds" if len(classes) == 2 else "margin"


def _linear(final: Any, family: str, classes: list[Any] | None, z_ref: Any,
            has_sample: bool) -> tuple[Any, str, str]:
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))     # classes × features
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    mean = np.nanmean(np.asarray(z_ref, dtype=np.float64), axis=0) if has_sample \
        else np.zeros(coef.shape[1])
    base = intercept + coef @ mean

    def features(z: Any) -> tuple[np.ndarray, np.ndarray]:
        centred = np.asarray(_dense(z), dtype=np.float64) - mean
        if coef.shape[0] == 1:
            return centred * coef[0], base[:1]
        return centred[:, :, None] * coef.T[None, :, :], base

    if classes is None:
        output = "prediction"
    elif family in LOGISTIC and len(classes) == 2:
        output = "log-odds"
    else:
        output = "margin"
    against = "the mean of the version's sample" if has_sample else "zero (no sample stored)"
    return features, output, f"linear, exact (coefficients against {against})"


def raw_output(final: Any, family: str, z: Any) -> np.ndarray:
    """The model's raw output that the contributions add up to: rows, or rows × classes."""
    lib = boosting.library(final)
    if lib == "xgboost":
        return np.asarray(final.predict(z, output_margin=True), dtype=np.float64)
    if lib == "lightgbm":
        return np.asarray(final.predict(z, raw_score=True), dtype=np.float64)
    if lib == "catboost":
        return np.asarray(final.predict(z, prediction_type="RawFormulaVal"), dtype=np.float64)
    if family in PROBABILITY_TREES:
        return np.asarray(final.predict_proba(z), dtype=np.float64)
    if hasattr(final, "decision_function") and hasattr(final, "classes_"):
        return np.asarray(final.decision_function(z), dtype=np.float64)
    return np.asarray(final.predict(z), dtype=np.float64)


def _check_additive(explainer: Explainer, final: Any, family: str, frame: pd.DataFrame,
                    z_ref: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = raw_output(final, family, z_ref)
        labels = final.predict(z_ref) if explainer.classes else None
    labels = np.asarray(labels).reshape(-1) if labels is not None else None
    got = explainer.explain(frame, labels)
    total = got.base + got.contributions.sum(axis=1)
    if raw.ndim == 2 and raw.shape[1] > 1:
        index = {c: i for i, c in enumerate(explainer.classes or [])}
        pick = [index[c] for c in got.explained or []]
        raw = raw[np.arange(len(raw)), pick]
    raw = raw.reshape(-1)
    error = float(np.max(np.abs(total - raw) / np.maximum(1.0, np.abs(raw)))) if len(raw) else 0.0
    if not error <= TOLERANCE:
        raise ExplanationUnavailable(
            f"explanations are not available for this model: the contributions of {family} "
            f"did not add up to its output (off by {error:.2g} on reference rows)")
