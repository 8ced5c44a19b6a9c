"""Both engines of ours, the per-leaf tables (the default) and scikit-learn's trees translated
into a LightGBM booster, give shap's own TreeSHAP values: equal to shap's TreeExplainer within
1e-9 on random models of several shapes, including rows with NaN and rows exactly on (and one
float step either side of) the split thresholds, and adding up to the model's raw output within
1e-6. The explainer falls back from the tables to shap, and from shap to LightGBM."""
from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from server.demo import FEATURES, TARGET, build_pipeline, make_churn_data
from server.errors import ExplanationUnavailable
from server.scoring import explain, lightgbm_shap, treeshap_tables
from server.scoring.signature import infer_signature

shap = pytest.importorskip("shap")
pytest.importorskip("lightgbm")

N_FEATURES = 6
# (family, makes an estimator for (depth, leaves, seed), whether it learns from NaN)
FAMILIES: list[tuple[str, Any, bool]] = [
    ("hgb", lambda d, n, s: HistGradientBoostingClassifier(
        max_iter=15, max_depth=d, max_leaf_nodes=n, random_state=s), True),
    ("hgb-reg", lambda d, n, s: HistGradientBoostingRegressor(
        max_iter=15, max_depth=d, max_leaf_nodes=n, random_state=s), True),
    ("gb", lambda d, n, s: GradientBoostingClassifier(
        n_estimators=8, max_depth=d, max_leaf_nodes=n, subsample=0.8, random_state=s), False),
    ("gb-reg", lambda d, n, s: GradientBoostingRegressor(
        n_estimators=8, max_depth=d, max_leaf_nodes=n, learning_rate=0.3, random_state=s),
     False),
    ("rf", lambda d, n, s: RandomForestClassifier(
        6, max_depth=d, max_leaf_nodes=n, random_state=s), True),
    ("rf-reg", lambda d, n, s: RandomForestRegressor(
        6, max_depth=d, max_leaf_nodes=n, random_state=s), True),
    ("et", lambda d, n, s: ExtraTreesClassifier(
        6, max_depth=d, max_leaf_nodes=n, random_state=s), True),
    ("et-reg", lambda d, n, s: ExtraTreesRegressor(
        6, max_depth=d, max_leaf_nodes=n, random_state=s), True),
    ("tree", lambda d, n, s: DecisionTreeClassifier(
        max_depth=d, max_leaf_nodes=n, random_state=s), True),
    ("tree-reg", lambda d, n, s: DecisionTreeRegressor(
        max_depth=d, max_leaf_nodes=n, random_state=s), True),
]
# depth, leaves, seed, classes (1 = regression target for a regressor)
SHAPES = [(2, None, 0, 2), (5, 12, 1, 3), (None, 31, 2, 2), (8, None, 3, 4)]


def _data(seed: int, classes: int, nan: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features on a few scales, some with repeated values (ties), NaN where the model allows;
    a classification target of ``classes`` classes and a regression target."""
    rs = np.random.RandomState(seed)
    x = np.column_stack([rs.normal(size=300), rs.exponential(3.0, 300) * 1e3,
                         rs.randint(0, 4, 300).astype(float), rs.uniform(-1, 1, 300) * 1e-3,
                         rs.normal(size=300).round(1), rs.normal(size=300)])
    if nan:
        x[rs.rand(*x.shape) < 0.08] = np.nan
    clean = np.nan_to_num(x)
    score = clean[:, 0] + clean[:, 2] - clean[:, 4] + rs.normal(scale=0.5, size=300)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return x, y, score + 1e-3 * clean[:, 1]


def _thresholds(final: Any) -> list[tuple[int, float]]:
    """(feature, threshold) of every split of the fitted model with a finite threshold (a
    scikit-learn tree splitting missing from present values puts it at +inf)."""
    if hasattr(final, "_predictors"):
        return [(int(n["feature_idx"]), float(n["num_threshold"]))
                for it in final._predictors for p in it for n in p.nodes
                if not n["is_leaf"] and np.isfinite(n["num_threshold"])]
    members = np.asarray(getattr(final, "estimators_", [final])).reshape(-1)
    return [(int(f), float(t)) for m in members
            for f, t, left in zip(m.tree_.feature, m.tree_.threshold, m.tree_.children_left)
            if left >= 0 and np.isfinite(t)]


def _rows(final: Any, x: np.ndarray, seed: int, float32: bool) -> np.ndarray:
    """Training-like rows, rows set exactly on a threshold and one float step either side (in
    float32 for scikit-learn's own trees, which compare float32 inputs), and rows of values
    LightGBM itself would read as zero."""
    rs = np.random.RandomState(seed + 100)
    splits = _thresholds(final)
    picks = rs.choice(len(splits), size=min(60, len(splits)), replace=False)
    on = x[rs.randint(0, len(x), size=(3, len(picks)))].copy()
    kind = np.float32 if float32 else np.float64
    for k, (row_on, row_below, row_above) in enumerate(zip(*on)):
        f, t = splits[picks[k]]
        value = kind(t)
        row_on[f] = value
        row_below[f] = np.nextafter(value, kind(-np.inf))
        row_above[f] = np.nextafter(value, kind(np.inf))
    near_zero = [[1e-40], [-1e-40], [-0.0]] + ([[np.nan]] if np.isnan(x).any() else [])
    tiny = np.repeat(near_zero, x.shape[1], axis=1)
    return np.vstack([x[:80], on.reshape(-1, x.shape[1]), tiny])


def _shap(final: Any, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = shap.TreeExplainer(final, feature_perturbation="tree_path_dependent",
                                  model_output="raw")
        phi = np.asarray(tree.shap_values(z, check_additivity=False), dtype=np.float64)
    return phi, np.asarray(tree.expected_value, dtype=np.float64).reshape(-1)


ENGINES = {"lightgbm": lightgbm_shap.translate, "tables": treeshap_tables.tables}


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"d{s[0]}-l{s[1]}-s{s[2]}-c{s[3]}")
@pytest.mark.parametrize("name,make,nan", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_engine_gives_shaps_values(name: str, make: Any, nan: bool,
                                        shape: tuple[Any, ...], engine: str) -> None:
    depth, leaves, seed, classes = shape
    x, y, target = _data(seed, classes, nan)
    final = make(depth, leaves, seed).fit(x, target if name.endswith("-reg") else y)
    family = type(final).__name__
    fast = ENGINES[engine](final, family)
    assert fast is not None
    z = _rows(final, x, seed, float32=fast.float32)
    phi, base = fast(z)
    raw = explain.raw_output(final, family, z)
    total = phi.sum(axis=1) + (base if phi.ndim == 3 else base[0])
    np.testing.assert_allclose(total, raw, rtol=0, atol=1e-6)
    if family == "GradientBoostingClassifier" and classes > 2:
        return    # shap reads only binary GradientBoostingClassifier: its sum is checked above
    want_phi, want_base = _shap(final, z)
    assert phi.shape == want_phi.shape
    np.testing.assert_allclose(phi, want_phi, rtol=0, atol=1e-9)
    np.testing.assert_allclose(base, want_base, rtol=0, atol=1e-9)


def test_what_is_not_exact_stays_with_shap() -> None:
    x, y, _ = _data(0, 2, nan=False)
    weights = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    weighted = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y, weights)
    assert lightgbm_shap.translate(weighted, "DecisionTreeClassifier") is None
    multi_output = RandomForestRegressor(3, max_depth=3).fit(x, np.column_stack([y, y]))
    assert lightgbm_shap.translate(multi_output, "RandomForestRegressor") is None
    native = HistGradientBoostingClassifier(max_iter=3, categorical_features=[2]).fit(x, y)
    assert lightgbm_shap.translate(native, "HistGradientBoostingClassifier") is None
    with pytest.raises(ExplanationUnavailable, match="native categorical"):
        explain._trees(native, "HistGradientBoostingClassifier", [0, 1])
    # a weighted tree is still explained, from the tables (fractional covers are theirs to
    # take), equal to shap's values, and still adds up
    features, _, method = explain._trees(weighted, "DecisionTreeClassifier", [0, 1])
    assert "per-leaf tables" in method
    phi, base = features(x[:20])
    np.testing.assert_allclose(phi.sum(axis=1) + base, weighted.predict_proba(x[:20]),
                               atol=1e-6)
    want_phi, want_base = _shap(weighted, x[:20])
    np.testing.assert_allclose(phi, want_phi, rtol=0, atol=1e-9)
    np.testing.assert_allclose(base, want_base, rtol=0, atol=1e-9)
    # what neither engine of ours reads stays with shap
    assert treeshap_tables.tables(multi_output, "RandomForestRegressor") is None
    assert treeshap_tables.tables(native, "HistGradientBoostingClassifier") is None


def test_long_paths_stay_with_shap(monkeypatch: Any) -> None:
    """The tables grow as 2^(features on a path): past the bound the model keeps shap."""
    x, y, _ = _data(2, 2, nan=False)
    deep = DecisionTreeClassifier(random_state=0).fit(x, y)
    assert treeshap_tables.tables(deep, "DecisionTreeClassifier") is not None
    monkeypatch.setattr(treeshap_tables, "MAX_PATH_FEATURES", 2)
    assert treeshap_tables.tables(deep, "DecisionTreeClassifier") is None
    assert "shap TreeExplainer" in explain._trees(deep, "DecisionTreeClassifier", [0, 1])[2]


def test_without_tables_or_shap_the_demo_model_is_explained_by_lightgbm(
        monkeypatch: Any) -> None:
    data = make_churn_data(2000, seed=4)
    model = build_pipeline().fit(data[FEATURES], data[TARGET])
    sample = make_churn_data(300, seed=5)[FEATURES]
    rows = sample.head(50)
    want_phi, want_base = _shap(model[-1], np.asarray(model[:-1].transform(rows), np.float64))
    assert "per-leaf tables" in explain.build(model, infer_signature(model, sample),
                                              sample).method
    # a machine without a C compiler has no tables, and one without shap then has LightGBM
    monkeypatch.setattr(treeshap_tables, "tables", lambda final, family: None)
    assert "shap" in explain.build(model, infer_signature(model, sample), sample).method
    monkeypatch.setitem(sys.modules, "shap", None)      # import shap now fails
    explainer = explain.build(model, infer_signature(model, sample), sample)
    assert "LightGBM" in explainer.method
    got = explainer.explain(rows, model.predict(rows))
    np.testing.assert_allclose(got.contributions, want_phi @ explainer.groups, rtol=0,
                               atol=1e-9)
    np.testing.assert_allclose(got.base, want_base[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.base + got.contributions.sum(axis=1),
                               model.decision_function(rows), rtol=0, atol=1e-6)


def test_multiclass_gradient_boosting_which_shap_refuses_is_explained() -> None:
    x, y, _ = _data(1, 3, nan=False)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(N_FEATURES)])
    model = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0)
    model.fit(frame, np.array(["low", "mid", "high"])[y])
    explainer = explain.build(model, infer_signature(model, frame), frame)
    assert "per-leaf tables" in explainer.method and explainer.output == "margin"
    labels = model.predict(frame)
    got = explainer.explain(frame, labels)
    raw = model.decision_function(frame)
    pick = [list(model.classes_).index(c) for c in got.explained]
    assert got.explained == labels.tolist()
    np.testing.assert_allclose(got.base + got.contributions.sum(axis=1),
                               raw[np.arange(len(raw)), pick], rtol=0, atol=1e-6)
