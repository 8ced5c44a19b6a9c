"""Per-row explanations are exact: base + contributions equals the raw output, and they are
shap's own values on the transformed features, summed per input."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    SplineTransformer,
    StandardScaler,
)

from server.demo import CATEGORICAL, FEATURES, NUMERIC, make_churn_data
from server.errors import ExplanationUnavailable
from server.scoring import explain
from server.scoring.signature import infer_signature

shap = pytest.importorskip("shap")

DATA = make_churn_data(500, seed=3)
X = DATA[FEATURES]
Y_CLASS = DATA["churned"]
Y_MULTI = DATA["contract"].where(DATA["churned"] == "no", "churned")   # three classes
Y_REG = DATA["monthly_charges"].fillna(50.0) * 2 + DATA["tenure_months"]
ROWS = make_churn_data(60, seed=99)[FEATURES]      # rows the explainer was never checked on
ROWS.loc[3, "monthly_charges"] = np.nan
ROWS.loc[5, "contract"] = "three-year"             # a category the encoders never saw


def _imputed(step: Any) -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="median"), step)


PREPROCESSORS = {
    "one-hot + passthrough": lambda: ColumnTransformer([
        ("num", _imputed("passthrough"), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)]),
    "scaled + ordinal": lambda: ColumnTransformer([
        ("num", _imputed(StandardScaler()), NUMERIC),
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
         CATEGORICAL)]),
    "splines + bins + sparse one-hot": lambda: ColumnTransformer([
        ("spline", _imputed(SplineTransformer(n_knots=4)), ["tenure_months", "monthly_charges"]),
        ("bins", KBinsDiscretizer(n_bins=3, encode="onehot-dense", quantile_method="averaged_inverted_cdf"),
         ["support_calls"]),
        ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", drop="if_binary"),
         CATEGORICAL)], sparse_threshold=1.0),
    "indicator + scaler, remainder": lambda: ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()),
         ["monthly_charges", "tenure_months"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)],
        remainder="passthrough"),
}

ESTIMATORS = {
    "HistGradientBoostingClassifier": (lambda: HistGradientBoostingClassifier(max_iter=15), Y_CLASS),
    "HistGradientBoostingClassifier multiclass": (
        lambda: HistGradientBoostingClassifier(max_iter=10), Y_MULTI),
    "HistGradientBoostingRegressor": (lambda: HistGradientBoostingRegressor(max_iter=15), Y_REG),
    "GradientBoostingClassifier": (lambda: GradientBoostingClassifier(n_estimators=10), Y_CLASS),
    "GradientBoostingRegressor": (lambda: GradientBoostingRegressor(n_estimators=10), Y_REG),
    "RandomForestClassifier": (lambda: RandomForestClassifier(8, max_depth=6, random_state=0),
                               Y_CLASS),
    "RandomForestClassifier multiclass": (
        lambda: RandomForestClassifier(8, max_depth=6, random_state=0), Y_MULTI),
    "ExtraTreesRegressor": (lambda: ExtraTreesRegressor(8, max_depth=6, random_state=0), Y_REG),
    "LogisticRegression": (lambda: LogisticRegression(max_iter=500), Y_CLASS),
    "LogisticRegression multiclass": (lambda: LogisticRegression(max_iter=500), Y_MULTI),
    "LinearRegression": (LinearRegression, Y_REG),
    "Ridge": (Ridge, Y_REG),
}


def _booster(name: str) -> Any:
    if name == "xgboost":
        xgb = pytest.importorskip("xgboost")
        return xgb.XGBClassifier(n_estimators=10, max_depth=3)
    if name == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        return lgb.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1)
    cb = pytest.importorskip("catboost")
    return cb.CatBoostClassifier(iterations=10, depth=3, verbose=False, allow_writing_files=False)


def _fitted(pre: Any, est: Any, y: pd.Series) -> Any:
    model = Pipeline([("pre", pre), ("model", est)])
    if isinstance(y.iloc[0], str) and type(est).__module__.startswith("xgboost"):
        y = y.astype("category").cat.codes
    return model.fit(X, y)


def _built(model: Any) -> explain.Explainer:
    return explain.build(model, infer_signature(model, X), X)


def _dense(z: Any) -> np.ndarray:
    return np.asarray(z.toarray() if hasattr(z, "toarray") else z, dtype=np.float64)


def _check(model: Any) -> None:
    explainer = _built(model)
    labels = np.asarray(model.predict(ROWS)).reshape(-1)
    got = explainer.explain(ROWS, labels)
    final, z = model[-1], _dense(model[:-1].transform(ROWS))
    raw = explain.raw_output(final, type(final).__name__, z)
    classes = list(getattr(final, "classes_", []))
    if raw.ndim == 2:
        pick = [classes.index(c) for c in got.explained]
        raw = raw[np.arange(len(raw)), pick]
    np.testing.assert_allclose(got.base + got.contributions.sum(axis=1), raw, rtol=0, atol=1e-6)
    # shap's own values on the transformed features, summed by the input each feature came from
    phi, base = _shap_values(final, z, _dense(model[:-1].transform(X)))
    if phi.ndim == 3:
        pick = [classes.index(c) for c in got.explained]
        phi, base = phi[np.arange(len(z)), :, pick], np.asarray(base)[pick]
    owners = _owners_by_name(model[:-1])
    summed = np.stack([phi[:, owners == col].sum(axis=1) for col in FEATURES], axis=1)
    np.testing.assert_allclose(got.contributions, summed, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.base, np.broadcast_to(base, got.base.shape), atol=1e-6)
    assert len(got.reasons(0, 3)) == 3


def _shap_values(final: Any, z: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, Any]:
    if hasattr(final, "coef_"):
        lin = shap.LinearExplainer(final, shap.maskers.Independent(background,
                                                                   max_samples=len(background)))
        return np.asarray(lin.shap_values(z)), lin.expected_value
    tree = shap.TreeExplainer(final)
    return np.asarray(tree.shap_values(z, check_additivity=True)), tree.expected_value


def _owners_by_name(pre: Any) -> np.ndarray:
    """The input of each transformed feature read another way: from its output name."""
    out = []
    for name in pre.get_feature_names_out():
        bare = name.split("__", 1)[1].removeprefix("missingindicator_")
        out.append(max((c for c in FEATURES if bare == c or bare.startswith(c + "_")), key=len))
    return np.array(out)


@pytest.mark.parametrize("pre", list(PREPROCESSORS))
@pytest.mark.parametrize("family", list(ESTIMATORS))
def test_contributions_add_up_and_equal_shap(family: str, pre: str) -> None:
    trees = [f for f in ESTIMATORS if not f.startswith(("Logistic", "Linear", "Ridge"))]
    names = list(PREPROCESSORS)
    k = list(ESTIMATORS).index(family)
    chosen = {names[k % 4]} if family in trees else {names[k % 4], names[(k + 2) % 4]}
    if pre not in chosen:
        pytest.skip("each tree family runs on one preprocessor and each linear one on two; "
                    "together they cover every preprocessor")
    make, y = ESTIMATORS[family]
    transformer = PREPROCESSORS[pre]()
    if family.startswith("Hist"):   # which takes dense input only
        transformer.set_params(sparse_threshold=0.0)
    _check(_fitted(transformer, make(), y))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm", "catboost"])
def test_boosting_libraries_add_up(library: str) -> None:
    _check(_fitted(PREPROCESSORS["scaled + ordinal"](), _booster(library), Y_CLASS))


def test_bare_estimator_and_output_spaces() -> None:
    numeric = X[NUMERIC].fillna(0.0)
    model = RandomForestClassifier(5, max_depth=4, random_state=0).fit(numeric, Y_CLASS)
    explainer = explain.build(model, infer_signature(model, numeric), numeric)
    got = explainer.explain(numeric.head(5))
    assert explainer.output == "probability" and got.explained == ["yes"] * 5
    np.testing.assert_allclose(got.base + got.contributions.sum(axis=1),
                               model.predict_proba(numeric.head(5))[:, 1], atol=1e-6)
    hgb = _built(_fitted(PREPROCESSORS["one-hot + passthrough"](),
                         HistGradientBoostingClassifier(max_iter=5), Y_CLASS))
    assert hgb.output == "log-odds"
    multi = _built(_fitted(PREPROCESSORS["one-hot + passthrough"](),
                           LogisticRegression(max_iter=300), Y_MULTI))
    assert multi.output == "margin"


def test_reasons_read_as_phrases() -> None:
    model = _fitted(PREPROCESSORS["one-hot + passthrough"](),
                    LogisticRegression(max_iter=500), Y_CLASS)
    got = _built(model).explain(ROWS.head(4))
    for i in range(4):
        reasons = got.reasons(i, None)
        effects = [abs(r["effect"]) for r in reasons]
        assert effects == sorted(effects, reverse=True) and len(reasons) == len(FEATURES)
        for r in reasons:
            verb = "raises" if r["effect"] > 1e-12 else "lowers" if r["effect"] < -1e-12 \
                else "does not change"
            assert r["text"].startswith(f"{r['column']} = ") and verb in r["text"]
            assert r["text"].endswith("the probability of yes")
    assert got.reasons(3, None)[[r["column"] for r in got.reasons(3, None)].index(
        "monthly_charges")]["text"].startswith("monthly_charges = missing")


def test_models_without_an_exact_method_are_refused() -> None:
    knn = _fitted(PREPROCESSORS["scaled + ordinal"](), KNeighborsClassifier(), Y_CLASS)
    with pytest.raises(ExplanationUnavailable, match="not available for this model"):
        _built(knn)
    crossed = Pipeline([("pre", ColumnTransformer([
        ("poly", _imputed(PolynomialFeatures(2)), ["tenure_months", "monthly_charges"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])),
        ("model", LogisticRegression(max_iter=300))]).fit(X, Y_CLASS)
    with pytest.raises(ExplanationUnavailable, match="polynomial cross terms"):
        _built(crossed)
    # squares of one input are that input's: the same expansion one input at a time is exact
    squared = Pipeline([("pre", ColumnTransformer([
        ("t", _imputed(PolynomialFeatures(3)), ["tenure_months"]),
        ("m", _imputed(PolynomialFeatures(2)), ["monthly_charges"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])),
        ("model", Ridge())]).fit(X, Y_REG)
    got = _built(squared).explain(ROWS)
    np.testing.assert_allclose(got.base + got.contributions.sum(axis=1), squared.predict(ROWS),
                               atol=1e-6)


def test_native_categorical_splits() -> None:
    """HistGradientBoosting's own categorical splits: refused unless shap reads them exactly."""
    frame = X.copy()
    for col in CATEGORICAL:
        frame[col] = frame[col].astype("category")
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype")
    model.fit(frame, Y_CLASS)
    with pytest.raises(ExplanationUnavailable, match="native categorical splits"):
        explain.build(model, infer_signature(model, frame), frame)
    # the reason: shap reads the category splits as numeric thresholds, so its values miss
    codes = frame.apply(lambda c: c.cat.codes if c.dtype == "category" else c)
    tree = shap.TreeExplainer(model)
    phi = tree.shap_values(codes.to_numpy(float), check_additivity=False)
    assert np.abs(phi.sum(axis=1) + tree.expected_value - model.decision_function(frame)).max() > 1e-3


@pytest.mark.parametrize("pre", list(PREPROCESSORS))
def test_the_explainer_transforms_through_the_verified_float64_plan(pre: str) -> None:
    """One row's ColumnTransformer costs about a millisecond, a plan microseconds: where the
    compiled path's plan reproduces the pipeline bit for bit the explainer uses it, and its
    matrix is scikit-learn's (rows with unknown categories and missing values included)."""
    transformer = PREPROCESSORS[pre]().set_params(sparse_threshold=0.0)
    model = _fitted(transformer, HistGradientBoostingClassifier(max_iter=5), Y_CLASS)
    explainer = _built(model)
    expected = _dense(model[:-1].transform(ROWS))
    assert explainer.plan is not None
    planned = explainer.plan(ROWS)
    assert planned is not None
    np.testing.assert_array_equal(planned, expected)
    np.testing.assert_array_equal(_dense(explainer.transform(ROWS)), expected)
    # a step the plan cannot reproduce (user code): scikit-learn transforms, same numbers
    custom = Pipeline([("pre", PREPROCESSORS[pre]().set_params(sparse_threshold=0.0)),
                       ("user", FunctionTransformer(np.round, feature_names_out="one-to-one")),
                       ("model", HistGradientBoostingClassifier(max_iter=5))]).fit(X, Y_CLASS)
    unplanned = _built(custom)
    assert unplanned.plan is None
    np.testing.assert_array_equal(_dense(unplanned.transform(ROWS)),
                                  _dense(custom[:-1].transform(ROWS)))
