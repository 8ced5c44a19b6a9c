"""The compiled path (skl2onnx + onnxruntime) against scikit-learn, family by family: labels
identical and probabilities within 1e-6 on fresh rows, or no compiled form with the reason; and
the one-call scikit-learn path giving predict()'s labels even where probabilities tie."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from server.codecs.file_reader import frame_to_table
from server.scoring.coerce import coerce
from server.scoring.compiled.compiler import TOLERANCE, compile_version
from server.scoring.compiled.stored import load_runner
from server.scoring.runtime import LoadedModel
from server.scoring.signature import infer_signature
from tests.estimators import FailsOnHighCharges

TREES = (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier,
         GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestRegressor)


def data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x1": rng.normal(size=n), "x2": rng.uniform(0, 100, n).round(2),
        "city": rng.choice(["oslo", "lima", "pune"], n).astype(object),
    })
    score = frame["x1"] + frame["x2"] / 50 + (frame["city"] == "lima") * 0.8
    y = np.where(score > 1.5, "high", np.where(score > 0.5, "mid", "low")).astype(object)
    return frame, y


def pipeline(final, scale: bool | None = None) -> Pipeline:
    """Scaled numbers for models that need them; trees take them as they are (as business
    pipelines do, and as the exact float32 compiled form requires)."""
    if scale is None:
        scale = not isinstance(final, TREES)
    pre = ColumnTransformer([("num", StandardScaler() if scale else "passthrough", ["x1", "x2"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore",
                                                   sparse_output=False), ["city"])])
    return Pipeline([("pre", pre), ("model", final)])


def loaded(estimator, sample: pd.DataFrame, compiled: bytes | None) -> LoadedModel:
    signature = infer_signature(estimator, sample)
    runner = None
    if compiled is not None:
        import hashlib

        runner = load_runner(compiled, hashlib.sha256(compiled).hexdigest(), signature,
                             estimator)
    return LoadedModel("m", 1, estimator, signature, "0" * 64, compiled=runner)


def typed(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    return coerce(frame_to_table(frame), model.signature).frame


CLASSIFIERS = [
    LogisticRegression(max_iter=500), RandomForestClassifier(n_estimators=30, random_state=0),
    ExtraTreesClassifier(n_estimators=30, random_state=0),
    DecisionTreeClassifier(max_depth=6, random_state=0),
    GradientBoostingClassifier(n_estimators=30, random_state=0),
    HistGradientBoostingClassifier(max_iter=40, random_state=0),
    GaussianNB(),
]


@pytest.mark.parametrize("final", CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_compiled_classifiers_match_scikit_learn(final):
    X, y = data(1500, 1)
    estimator = pipeline(final).fit(X, y)
    signature = infer_signature(estimator, X)
    sample = coerce(frame_to_table(X.head(500)), signature).frame
    outcome = compile_version(estimator, signature, sample)
    assert outcome.data is not None, outcome.note
    assert re.match(r"onnxruntime( \(after the float64 preprocessing plan\))?: verified on "
                    r"\d+ reference rows \(labels identical", outcome.note)
    fresh, _ = data(3000, 2)
    fresh.loc[:9, "city"] = "unseen-city"  # unknown categories, as production sees them
    model = loaded(estimator, X, outcome.data)
    assert model.runtime == "onnx"
    pred = model.predict(typed(model, fresh))
    assert pred.labels.tolist() == estimator.predict(fresh).tolist()
    assert np.abs(pred.probabilities - estimator.predict_proba(fresh)).max() <= TOLERANCE
    one = model.predict(typed(model, fresh.head(1)))  # the single-row path too
    assert one.labels.tolist() == estimator.predict(fresh.head(1)).tolist()


def test_neighbours_stay_with_scikit_learn_where_ties_decide():
    """Whole-number inputs put several training rows at the k-th distance: which of them count
    is scikit-learn's search's choice (a compiled graph chose others on 2 of the zoo's 10,000
    rows), so neighbours are not compiled, and the note says why."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.integers(0, 5, 400).astype(float),
                      "b": rng.integers(0, 5, 400).astype(float)})
    y = np.where(X["a"] + rng.integers(0, 3, 400) > 3, "yes", "no")
    for final in (KNeighborsClassifier(n_neighbors=15), KNeighborsRegressor(n_neighbors=15)):
        target = y if hasattr(final, "predict_proba") else X["a"] * 2.0 + rng.normal(size=400)
        estimator = Pipeline([("scale", StandardScaler()), ("model", final)]).fit(X, target)
        signature = infer_signature(estimator, X)
        sample = coerce(frame_to_table(X.head(200)), signature).frame
        outcome = compile_version(estimator, signature, sample, native=True)
        assert outcome.data is None and "neighbours are not compiled" in outcome.note
        model = LoadedModel("m", 1, estimator, signature, "0" * 64, reference=lambda: X)
        got = model.predict(typed(model, X))
        if hasattr(final, "predict_proba"):
            np.testing.assert_array_equal(got.probabilities, estimator.predict_proba(X))
        else:
            np.testing.assert_array_equal(got.labels, estimator.predict(X))


def test_regressors_compile_or_say_why():
    X, _ = data(800, 3)
    target = X["x1"] * 3 + X["x2"] / 7
    for final in (LinearRegression(), RandomForestRegressor(n_estimators=20, random_state=0)):
        estimator = pipeline(final).fit(X, target)
        signature = infer_signature(estimator, X)
        outcome = compile_version(estimator, signature, typed(loaded(estimator, X, None), X))
        if outcome.data is None:  # float32 arithmetic may not meet 1e-6: then it says so
            assert outcome.note.startswith("scikit-learn: compiled values differ by up to"), \
                outcome.note
            continue
        model = loaded(estimator, X, outcome.data)
        fresh, _ = data(500, 4)
        got = model.predict(typed(model, fresh)).labels.astype(float)
        want = estimator.predict(fresh)
        assert np.max(np.abs(got - want) / np.maximum(1, np.abs(want))) <= TOLERANCE


def test_unsupported_models_fall_back_to_scikit_learn(demo_model):
    from tests.conftest import churn_rows

    wrapped = FailsOnHighCharges(demo_model).fit(None, None)
    frame = churn_rows(50)
    signature = infer_signature(wrapped, frame)
    outcome = compile_version(wrapped, signature, typed(loaded(wrapped, frame, None), frame))
    assert outcome.data is None
    assert outcome.note.startswith("scikit-learn: no ONNX conversion for this pipeline")
    svc = pipeline(SVC()).fit(*data(300, 5))  # no predict_proba: float64 only, on its labels
    X, _ = data(300, 5)
    svc_outcome = compile_version(svc, infer_signature(svc, X), X)
    if svc_outcome.data is None:
        assert "float32" not in svc_outcome.note and "SVC" in svc_outcome.note, \
            svc_outcome.note
    else:
        assert svc_outcome.note.endswith("(labels identical; float64)"), svc_outcome.note
    model = loaded(wrapped, frame, None)
    assert model.runtime == "sklearn"
    assert model.predict(typed(model, frame)).labels.tolist() == demo_model.predict(frame).tolist()


def test_trees_after_numeric_transformers_run_after_the_float64_plan():
    """Without native trees, a forest after a scaler is the forest's own float32 graph after
    the float64 plan, its split edges guarded on the plan's matrix (tests of the zoo:
    test_compiled_pipelines.py)."""
    X, y = data(600, 7)
    estimator = pipeline(RandomForestClassifier(n_estimators=10, random_state=0),
                         scale=True).fit(X, y)
    signature = infer_signature(estimator, X)
    outcome = compile_version(estimator, signature, coerce(frame_to_table(X), signature).frame)
    assert outcome.data is not None, outcome.note
    assert outcome.note.startswith("onnxruntime (after the float64 preprocessing plan)")
    model = loaded(estimator, X, outcome.data)
    fresh, _ = data(500, 8)
    pred = model.predict(typed(model, fresh))
    assert pred.labels.tolist() == estimator.predict(fresh).tolist()
    assert np.abs(pred.probabilities - estimator.predict_proba(fresh)).max() <= TOLERANCE


def test_values_at_a_float32_threshold_edge_go_to_scikit_learn():
    """HistGradientBoosting compares in float64, the compiled graph in float32: an input between
    a threshold and its float32 rounding is answered by scikit-learn."""
    X, y = data(1500, 8)
    estimator = pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(X, y)
    signature = infer_signature(estimator, X)
    outcome = compile_version(estimator, signature, coerce(frame_to_table(X), signature).frame)
    model = loaded(estimator, X, outcome.data)
    thresholds, narrow = model.compiled._guards["x2"]
    edge = next(t for t, n in zip(thresholds, narrow) if float(n) != t)
    rows = X.head(3).copy()
    rows["x2"] = [edge, np.nextafter(edge, np.inf), float(np.float32(edge))]
    _, edge = model.compiled.prepare(typed(model, rows))
    assert len(edge) >= 1
    pred = model.predict(typed(model, rows))
    assert pred.labels.tolist() == estimator.predict(rows).tolist()
    # the edge rows are scikit-learn's own answer, exactly
    assert np.array_equal(pred.probabilities[edge], estimator.predict_proba(rows)[edge])
    assert len(model.compiled.prepare(typed(model, X.head(50)))[1]) == 0  # ordinary rows


def test_missing_text_goes_to_scikit_learn_for_that_call():
    X, y = data(600, 6)
    estimator = pipeline(HistGradientBoostingClassifier(max_iter=20, random_state=0)).fit(X, y)
    signature = infer_signature(estimator, X)
    outcome = compile_version(estimator, signature, coerce(frame_to_table(X), signature).frame)
    model = loaded(estimator, X, outcome.data)
    rows = X.head(20).copy()
    rows.loc[3, "city"] = None  # ONNX has no missing string: this call is scikit-learn's
    assert model.compiled.feed(typed(model, rows)) is None
    pred = model.predict(typed(model, rows))
    assert pred.labels.tolist() == estimator.predict(rows).tolist()
    assert np.array_equal(pred.probabilities, estimator.predict_proba(rows))


def test_one_call_labels_equal_predict_even_on_ties():
    # a depth-1 tree whose leaves hold equal counts of two classes: probabilities tie at 0.5
    X = pd.DataFrame({"x1": [0.0, 0.0, 1.0, 1.0], "x2": [1.0, 2.0, 3.0, 4.0],
                      "city": ["oslo"] * 4}, dtype=object).astype({"x1": float, "x2": float})
    y = np.array(["b", "a", "a", "b"], dtype=object)
    for final in (DecisionTreeClassifier(max_depth=1), LogisticRegression(C=1e-9),
                  HistGradientBoostingClassifier(max_iter=1, min_samples_leaf=1)):
        estimator = pipeline(final).fit(X, y)
        model = loaded(estimator, X, None)
        probs = estimator.predict_proba(X)
        pred = model.predict(typed(model, X))
        assert pred.labels.tolist() == estimator.predict(X).tolist()
        assert np.array_equal(pred.probabilities, probs)


def test_a_linear_model_the_graph_cannot_hold_says_what_stopped_it():
    """Splines before a LogisticRegression compile through the float64 plan; a user function
    before it stops both the plan and the graph, and the note names the step and the reason
    (not a tree model's float32 reason, which does not apply)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, SplineTransformer, StandardScaler

    X, y = data(400, 8)
    numbers = X.select_dtypes("number")
    for middle, compiles in ((SplineTransformer(n_knots=4), True),
                             (FunctionTransformer(lambda v: v * 2), False)):
        estimator = make_pipeline(StandardScaler(), middle,
                                  LogisticRegression(max_iter=500)).fit(numbers, y)
        signature = infer_signature(estimator, numbers)
        outcome = compile_version(estimator, signature,
                                  coerce(frame_to_table(numbers), signature).frame)
        assert (outcome.data is not None) == compiles, outcome.note
        assert "tree" not in outcome.note
        if compiles:
            assert outcome.note.startswith("onnxruntime (after the float64 preprocessing plan)")
        else:
            assert "step 'functiontransformer' (FunctionTransformer with func=<lambda>)" in \
                outcome.note and "no ONNX conversion for this pipeline" in outcome.note, \
                outcome.note
