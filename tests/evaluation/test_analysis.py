"""The holdout analysis equals scikit-learn's own functions on the same rows (permutation
importance with the same seed, partial dependence, ROC, precision-recall, confusion matrix,
calibration, residuals), for binary, multiclass and regression pipelines with and without
categorical inputs, and on a seeded sample of a holdout larger than the bound."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from server.evaluation.analysis import analyse
from server.evaluation.contributions import mean_abs_contributions
from server.scoring import explain
from server.scoring.runtime import LoadedModel
from server.scoring.signature import infer_signature


def _mixed(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 15, n).round(2),
                         "region": rng.choice(["north", "south", "east", "west"], n),
                         "plan": rng.choice(["basic", "plus"], n)})


def _mixed_pipeline(estimator: Any) -> Any:
    return make_pipeline(ColumnTransformer([
        ("num", StandardScaler(), ["age", "income"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["region", "plan"])]), estimator)


def _case(kind: str) -> tuple[Any, pd.DataFrame, pd.Series]:
    if kind == "binary-numeric":
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        X = X.iloc[:, :5]
        return make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:300], y[:300]), \
            X[300:], y[300:]
    if kind == "multiclass-numeric":
        X, y = load_wine(return_X_y=True, as_frame=True)
        return RandomForestClassifier(n_estimators=15, random_state=0).fit(X[::2], y[::2]), \
            X[1::2], y[1::2]
    if kind == "regression-numeric":
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        return make_pipeline(StandardScaler(), Ridge()).fit(X[:300], y[:300]), X[300:], y[300:]
    X = _mixed(900, 1)
    logit = (X.age - 50) / 10 + (X.region == "north") * 1.5 - (X.plan == "plus")
    if kind == "binary-categorical":
        y = pd.Series(np.where(logit + np.random.default_rng(2).normal(0, 1, 900) > 0,
                               "yes", "no"))
        est = _mixed_pipeline(LogisticRegression())
    elif kind == "multiclass-categorical":
        y = pd.Series(np.digitize(logit, [-1, 1])).map({0: "low", 1: "mid", 2: "high"})
        est = _mixed_pipeline(RandomForestClassifier(n_estimators=15, random_state=0))
    else:
        y = pd.Series(logit * 3 + X.income / 10)
        est = _mixed_pipeline(GradientBoostingRegressor(n_estimators=30, random_state=0))
    return est.fit(X[:500], y[:500]), X[500:].reset_index(drop=True), y[500:].reset_index(drop=True)


KINDS = ["binary-numeric", "binary-categorical", "multiclass-numeric", "multiclass-categorical",
         "regression-numeric", "regression-categorical"]


@functools.lru_cache(maxsize=None)
def analysed(kind: str) -> tuple[Any, pd.DataFrame, pd.Series, dict[str, Any], int]:
    """A fitted case and its analysis on a seeded sample of its holdout (computed once per
    session: the report's chart tests draw the same analyses)."""
    est, X, y = _case(kind)
    model = LoadedModel("m", 1, est, infer_signature(est, X), "sha", reference=lambda: X)
    limit = min(150, len(X) // 2)  # fewer than the holdout has: the seeded sample is compared
    return est, X, y, analyse(model, X.assign(target=y.to_numpy()), "target",
                              sample_rows=limit, seed=3,
                              contributions=mean_abs_contributions), limit


@pytest.mark.parametrize("kind", KINDS)
def test_analysis_equals_scikit_learn(kind: str) -> None:
    est, X, y, got, limit = analysed(kind)
    signature = infer_signature(est, X)
    holdout = X.assign(target=y.to_numpy())
    assert got["sample_rows"] == limit and got["holdout_rows"] == len(X)
    picked = holdout.sample(n=limit, random_state=3)
    Xs, ys = picked[X.columns].reset_index(drop=True), picked["target"].to_numpy()
    metric = got["metric"]
    assert metric == {"binary": "roc_auc", "multiclass": "accuracy",
                      "regression": "r2"}[got["kind"]]
    ref = permutation_importance(est, Xs, ys, scoring=metric, n_repeats=5, random_state=3)
    mine = {e["column"]: e for e in got["importance"]["columns"]}
    for j, name in enumerate(Xs.columns):
        assert mine[name]["mean"] == pytest.approx(ref.importances_mean[j], abs=1e-12)
        assert mine[name]["std"] == pytest.approx(ref.importances_std[j], abs=1e-12)
    # the explainer's global importance: mean |contribution| per input over the same rows
    explained = explain.build(est, signature, X).explain(Xs, est.predict(Xs))
    means = dict(zip(Xs.columns, np.abs(explained.contributions).mean(axis=0)))
    contrib = got["contribution_importance"]
    assert [e["column"] for e in contrib] == sorted(means, key=lambda c: -means[c])
    for e in contrib:
        assert e["mean_abs"] == pytest.approx(means[e["column"]], rel=1e-9, abs=1e-12)
    categorical = {c.name for c in signature.inputs if c.is_categorical}
    assert [c["column"] for c in got["dependence"]["curves"]] == \
        [e["column"] for e in got["importance"]["columns"][:4]]
    # scikit-learn asks for integer inputs as floats (the grid falls between integers)
    Xf = Xs.astype({c: float for c in Xs.columns if Xs[c].dtype.kind in "iu"})
    for curve in got["dependence"]["curves"]:
        col = curve["column"]
        pd_ref = partial_dependence(est, Xf, [col], grid_resolution=20, method="brute",
                                    categorical_features=[col] if col in categorical else None)
        assert list(curve["grid"]) == pytest.approx(list(pd_ref["grid_values"][0])) \
            if col not in categorical else list(curve["grid"]) == list(pd_ref["grid_values"][0])
        averages = np.array(list(curve["average"].values()))
        np.testing.assert_allclose(averages, pd_ref["average"], atol=1e-10)
    assert {s["column"] for s in got["segments"]} == categorical
    if got["kind"] == "regression":
        np.testing.assert_allclose(got["residuals"]["residual"], ys - est.predict(Xs), atol=1e-9)
        counts, _ = np.histogram(ys - est.predict(Xs), bins=20)
        assert got["residuals"]["histogram"]["counts"] == counts.tolist()
        return
    classes = list(est.classes_)
    assert got["confusion"]["matrix"] == confusion_matrix(ys, est.predict(Xs),
                                                          labels=classes).tolist()
    proba = est.predict_proba(Xs)
    shown = [1] if len(classes) == 2 else range(len(classes))
    assert [c["class"] for c in got["roc"]] == [str(classes[k]) for k in shown]
    for k, roc, pr, cal in zip(shown, got["roc"], got["precision_recall"], got["calibration"]):
        truth = ys == classes[k]
        fpr, tpr, _ = roc_curve(truth, proba[:, k])
        np.testing.assert_allclose(roc["fpr"], fpr, atol=1e-12)
        np.testing.assert_allclose(roc["tpr"], tpr, atol=1e-12)
        precision, recall, _ = precision_recall_curve(truth, proba[:, k])
        np.testing.assert_allclose(pr["precision"], precision, atol=1e-12)
        np.testing.assert_allclose(pr["recall"], recall, atol=1e-12)
        frac, mean = calibration_curve(truth, proba[:, k], n_bins=10)
        np.testing.assert_allclose(cal["fraction_positive"], frac, atol=1e-12)
        np.testing.assert_allclose(cal["mean_predicted"], mean, atol=1e-12)
    for seg in got["segments"]:
        for level in seg["levels"]:
            mask = (Xs[seg["column"]] == level["level"]).to_numpy()
            assert level["count"] == mask.sum()
            assert level["value"] == pytest.approx((est.predict(Xs)[mask] == ys[mask]).mean())


def test_a_classifier_without_probabilities_gets_accuracy_and_its_confusion_matrix() -> None:
    from sklearn.svm import LinearSVC

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :4]
    est = make_pipeline(StandardScaler(), LinearSVC()).fit(X[:300], y[:300])
    model = LoadedModel("m", 1, est, infer_signature(est, X), "sha")
    assert not model.has_probabilities
    Xh, yh = X[300:].reset_index(drop=True), y[300:].to_numpy()
    got = analyse(model, Xh.assign(target=yh), "target")
    assert got["metric"] == "accuracy" and got["roc"] == [] and got["calibration"] == []
    ref = permutation_importance(est, Xh, yh, scoring="accuracy", n_repeats=5, random_state=0)
    mine = {e["column"]: e["mean"] for e in got["importance"]["columns"]}
    assert [mine[c] for c in Xh.columns] == pytest.approx(list(ref.importances_mean), abs=1e-12)
    assert got["confusion"]["matrix"] == confusion_matrix(yh, est.predict(Xh)).tolist()
    # no probabilities: the share of rows predicted as the positive class
    curve = got["dependence"]["curves"][0]
    assert set(curve["average"]) == {"1"}
    col = curve["column"]
    for value, share in zip(curve["grid"], curve["average"]["1"]):
        assert share == pytest.approx((est.predict(Xh.assign(**{col: value})) == 1).mean())


def test_a_holdout_of_one_class_falls_back_to_accuracy() -> None:
    est, X, y = _case("binary-numeric")
    one = y.to_numpy() == 1
    model = LoadedModel("m", 1, est, infer_signature(est, X), "sha")
    got = analyse(model, X[one].assign(target=y.to_numpy()[one]), "target")
    assert got["metric"] == "accuracy" and got["roc"] == []  # no curve without both classes
    assert got["confusion"]["matrix"][0] == [0, 0]
