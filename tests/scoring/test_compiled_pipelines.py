"""The pipelines people write, compiled: numeric transformers before trees (native trees after
the float64 preprocessing plan), linear models, neighbours and naive Bayes after any standard
preprocessing (their own float64 graph after the plan), the boosting libraries after such
preprocessing, voting and stacking ensembles (their tree members as native trees, the others and
a stack's final estimator scikit-learn's own on the plan's matrix). A zoo built here, each member
checked against scikit-learn on fresh and odd rows, one row at a time, and, for the tree models,
on rows placed on the trees' split thresholds (found by bisecting each input through the fitted
preprocessing until its feature sits on the threshold, one double either side)."""
from __future__ import annotations

import hashlib
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import LinearSVC

from server.codecs.file_reader import frame_to_table
from server.scoring.coerce import coerce
from server.scoring.compiled.compiler import TOLERANCE, compile_version
from server.scoring.compiled.estimator import matrix_guards
from server.scoring.compiled.stored import load_runner
from server.scoring.preprocess_plan import NotCompiled, plan
from server.scoring.runtime import LoadedModel
from server.scoring.signature import infer_signature

NUMBERS = ["age", "income", "visits", "tenure"]
TEXT = ["plan", "region"]
LINEAR = 1e-9  # linear models and other float64 graphs: scikit-learn's numbers to the last bits


def table(n: int, seed: int) -> pd.DataFrame:
    """Customer-like rows: a skewed amount, an integer count, a number with gaps, categories."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.normal(45, 12, n).round(1),
        "income": np.exp(rng.normal(10, 0.8, n)).round(2),
        "visits": rng.poisson(4, n).astype(np.int64),
        "tenure": rng.uniform(0, 20, n),
        "plan": rng.choice(["basic", "plus", "pro", "team"], n, p=[.4, .3, .2, .1]),
        "region": rng.choice(["north", "south", "east", "west", "central"], n),
    }).astype({"plan": object, "region": object})
    frame.loc[rng.random(n) < 0.08, "age"] = np.nan
    return frame


def targets(frame: pd.DataFrame, kind: str) -> np.ndarray:
    score = (frame["age"].fillna(45) - 45) / 12 + np.log(frame["income"]) - 10 \
        + frame["visits"] / 4 - (frame["plan"] == "basic") * 0.7 + np.sin(frame["tenure"])
    if kind == "regression":
        return np.asarray(score * 100 + 1000)
    if kind == "binary":
        return np.where(score > 0.3, "churn", "stay").astype(object)
    if kind == "codes":  # XGBoost takes its classes as 0, 1, ...
        return (score > 0.3).to_numpy().astype(np.int64)
    return np.where(score > 1.0, "high", np.where(score > -0.2, "mid", "low")).astype(object)


def columns(numbers: Any, text: Any) -> ColumnTransformer:
    return ColumnTransformer([("num", numbers, NUMBERS), ("cat", text, TEXT)])


def imputed(*steps: Any) -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="median"), *steps)


def onehot(**kw: Any) -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore", **kw)


def ordinal() -> OrdinalEncoder:
    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)


# (id, target kind, the pipeline, runtime it compiles to, tolerance)
ZOO: list[tuple[str, str, Callable[[], Any], str, float]] = [
    ("hgb-scaled-onehot", "binary", lambda: Pipeline([
        ("pre", columns(StandardScaler(), onehot())),
        ("model", HistGradientBoostingClassifier(max_iter=25, random_state=0))]), "native",
     TOLERANCE),
    ("extratrees-imputed-ordinal", "multiclass", lambda: Pipeline([
        ("pre", columns(SimpleImputer(strategy="mean"),
                        make_pipeline(SimpleImputer(strategy="most_frequent"), ordinal()))),
        ("model", ExtraTreesClassifier(n_estimators=12, max_depth=6, random_state=0))]),
     "native", TOLERANCE),
    ("logistic-onehot-scaled-splines", "binary", lambda: Pipeline([
        ("pre", columns(imputed(StandardScaler(), SplineTransformer(n_knots=4)), onehot())),
        ("model", LogisticRegression(max_iter=2000))]), "onnx", LINEAR),
    ("forest-quantile-regression", "regression", lambda: Pipeline([
        ("pre", columns(imputed(QuantileTransformer(n_quantiles=60)), onehot())),
        ("model", RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0))]),
     "native", TOLERANCE),
    ("gradient-boosting-power-multiclass", "multiclass", lambda: Pipeline([
        ("pre", columns(imputed(PowerTransformer()), onehot(drop="first"))),
        ("model", GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0))]),
     "native", TOLERANCE),
    ("hgb-target-encoded-regression", "regression", lambda: Pipeline([
        ("pre", columns(RobustScaler(), TargetEncoder(random_state=0))),
        ("model", HistGradientBoostingRegressor(max_iter=25, random_state=0))]), "native",
     TOLERANCE),
    ("ridge-polynomial", "regression", lambda: Pipeline([
        ("pre", columns(imputed(StandardScaler(), PolynomialFeatures(2)), onehot())),
        ("model", Ridge(alpha=1.0))]), "onnx", LINEAR),
    ("forest-clipped-minmax", "binary", lambda: Pipeline([
        ("pre", columns(imputed(FunctionTransformer(np.clip, kw_args={"a_min": 0.0,
                                                                       "a_max": 60_000.0}),
                                MinMaxScaler()), ordinal())),
        ("model", RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0))]),
     "native", TOLERANCE),
    ("sgd-binned-maxabs-multiclass", "multiclass", lambda: Pipeline([
        ("pre", columns(imputed(KBinsDiscretizer(n_bins=4, encode="onehot-dense",
                                                 quantile_method="averaged_inverted_cdf")),
                        onehot())),
        ("scale", MaxAbsScaler()),
        ("model", SGDClassifier(loss="log_loss", random_state=0))]), "onnx", LINEAR),
    ("linear-regression-indicators", "regression", lambda: Pipeline([
        ("pre", columns(make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()),
                        onehot(sparse_output=True))),
        ("model", LinearRegression())]), "onnx", LINEAR),
    ("naive-bayes-power", "binary", lambda: Pipeline([
        ("pre", columns(imputed(PowerTransformer()), onehot())),
        ("model", GaussianNB())]), "onnx", LINEAR),
    ("soft-voting-scaled-onehot", "binary", lambda: Pipeline([
        ("pre", columns(imputed(StandardScaler()), onehot())),
        ("model", VotingClassifier([
            ("logistic", LogisticRegression(max_iter=1000)),
            ("forest", RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0)),
            ("boosted", HistGradientBoostingClassifier(max_iter=15, random_state=0))],
            voting="soft"))]), "native", TOLERANCE),
    ("soft-voting-weighted-multiclass", "multiclass", lambda: Pipeline([
        ("pre", columns(imputed(PowerTransformer()), ordinal())),
        ("model", VotingClassifier([
            ("extra", ExtraTreesClassifier(n_estimators=8, max_depth=6, random_state=0)),
            ("off", "drop"),
            ("bayes", GaussianNB()),
            ("gradient", GradientBoostingClassifier(n_estimators=6, max_depth=3,
                                                    random_state=0))],
            voting="soft", weights=[2.0, 9.0, 1.0, 0.5]))]), "native", TOLERANCE),
    ("voting-regression-quantile", "regression", lambda: Pipeline([
        ("pre", columns(imputed(QuantileTransformer(n_quantiles=60)), onehot())),
        ("model", VotingRegressor([
            ("forest", RandomForestRegressor(n_estimators=6, max_depth=5, random_state=0)),
            ("ridge", Ridge()),
            ("boosted", HistGradientBoostingRegressor(max_iter=10, random_state=0))],
            weights=[1.0, 2.0, 0.5]))]), "native", TOLERANCE),
    ("stacking-scaled-onehot", "binary", lambda: Pipeline([
        ("pre", columns(imputed(StandardScaler()), onehot())),
        ("model", StackingClassifier([
            ("forest", RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0)),
            ("logistic", LogisticRegression(max_iter=1000)),
            ("boosted", HistGradientBoostingClassifier(max_iter=10, random_state=0))],
            final_estimator=LogisticRegression(), cv=3))]), "native", TOLERANCE),
    ("stacking-passthrough-multiclass", "multiclass", lambda: Pipeline([
        ("pre", columns(imputed(PowerTransformer()), ordinal())),
        ("model", StackingClassifier([
            ("extra", ExtraTreesClassifier(n_estimators=6, max_depth=5, random_state=0)),
            ("off", "drop"),
            ("linear", LinearSVC()),  # stacked by its decision_function
            ("gradient", GradientBoostingClassifier(n_estimators=5, max_depth=3,
                                                    random_state=0))],
            final_estimator=GaussianNB(), passthrough=True, cv=3))]), "native", TOLERANCE),
    ("stacking-regression", "regression", lambda: Pipeline([
        ("pre", columns(imputed(QuantileTransformer(n_quantiles=60)), onehot())),
        ("model", StackingRegressor([
            ("forest", RandomForestRegressor(n_estimators=6, max_depth=5, random_state=0)),
            ("ridge", Ridge())], final_estimator=Ridge(alpha=0.5), cv=3))]), "native",
     TOLERANCE),
]


def boosters() -> list[tuple[str, str, Callable[[], Any], str, float]]:
    out: list[tuple[str, str, Callable[[], Any], str, float]] = []
    try:
        from xgboost import XGBClassifier

        out.append(("xgboost-scaled-onehot", "codes", lambda: Pipeline([
            ("pre", columns(StandardScaler(), onehot(sparse_output=False))),
            ("model", XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1))]), "native",
            TOLERANCE))
    except ImportError:
        pass
    try:
        from lightgbm import LGBMRegressor

        out.append(("lightgbm-quantile-regression", "regression", lambda: Pipeline([
            ("pre", columns(QuantileTransformer(n_quantiles=60), ordinal())),
            ("model", LGBMRegressor(n_estimators=15, num_leaves=8, verbose=-1, n_jobs=1))]),
            "native", TOLERANCE))
    except ImportError:
        pass
    return out


MEMBERS = ZOO + boosters()


def fitted(make: Callable[[], Any], kind: str, seed: int = 0) -> tuple[Any, pd.DataFrame]:
    X = table(700, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make().fit(X, targets(X, kind)), X


def compiled(estimator: Any, X: pd.DataFrame) -> tuple[Any, LoadedModel]:
    signature = infer_signature(estimator, X)
    sample = coerce(frame_to_table(X.head(300)), signature).frame
    outcome = compile_version(estimator, signature, sample, native=True)
    runner = None if outcome.data is None else load_runner(
        outcome.data, hashlib.sha256(outcome.data).hexdigest(), signature, estimator,
        outcome.runtime)
    return outcome, LoadedModel("m", 1, estimator, signature, "0" * 64, compiled=runner)


def typed(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    return coerce(frame_to_table(frame), model.signature).frame


def odd_rows(seed: int) -> pd.DataFrame:
    """Fresh rows with what production sends: gaps, unseen categories, values far outside the
    training range, zeros."""
    rows = table(300, seed)
    rows.loc[:9, "plan"] = "enterprise"
    rows.loc[10:19, "region"] = "antarctica"
    rows.loc[20:29, "age"] = np.nan
    rows.loc[30:34, "income"] = [0.01, 1e9, 3e7, 123456789.5, 2.5]
    rows.loc[35:39, "tenure"] = [-50.0, 0.0, 1e6, -1e-300, 5e-324]
    rows.loc[40:44, "visits"] = [0, 1000, 0, 77, 10**6]
    return rows


def assert_same(model: LoadedModel, estimator: Any, frame: pd.DataFrame, tolerance: float
                ) -> None:
    pred = model.predict(typed(model, frame))
    assert not pred.failures and len(pred.ok) == len(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = estimator.predict(frame)
        if model.signature.output.kind == "regression":
            got = pred.labels.astype(float)
            worst = np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected)))
            assert worst <= tolerance, worst
            return
        assert pred.labels.tolist() == expected.tolist()
        if model.signature.output.probabilities:
            assert np.abs(pred.probabilities - estimator.predict_proba(frame)).max() <= tolerance


def split_thresholds(estimator: Any) -> dict[int, np.ndarray]:
    """Feature index -> the thresholds the model splits it at: scikit-learn's trees, or a
    booster's own dump."""
    final = estimator[-1]
    if hasattr(final, "get_booster"):  # XGBoost: features named f0, f1, ...
        dump = final.get_booster().trees_to_dataframe()
        dump = dump[dump["Feature"] != "Leaf"]
        index = dump["Feature"].str.slice(1).astype(int)
        return {j: np.unique(dump["Split"][index == j].to_numpy(dtype=float))
                for j in np.unique(index)}
    if hasattr(final, "booster_"):  # LightGBM: Column_0, Column_1, ...
        dump = final.booster_.trees_to_dataframe().dropna(subset=["split_feature"])
        index = dump["split_feature"].str.rsplit("_", n=1).str[-1].astype(int)
        return {j: np.unique(dump["threshold"][index == j].to_numpy(dtype=float))
                for j in np.unique(index)}
    if type(final).__name__.startswith(("Voting", "Stacking")):  # every member's splits
        parts: dict[int, list[np.ndarray]] = {}
        for member in final.estimators_:
            for j, thresholds in matrix_guards(member).items():
                parts.setdefault(j, []).append(thresholds)
        return {j: np.unique(np.concatenate(p)) for j, p in parts.items()}
    return matrix_guards(estimator)


def threshold_rows(estimator: Any, X: pd.DataFrame, per_column: int = 30) -> pd.DataFrame:
    """Rows whose preprocessed features sit on the model's split thresholds: for each numeric
    input, the thresholds of the features it drives are bisected back through the preprocessing
    down to two adjacent inputs, one double apart. The halving runs on the float64 plan (fast);
    scikit-learn's own transform then confirms that the feature of the first input is at or
    below the threshold and that of the second above it."""
    pre = estimator[:-1]
    thresholds = split_thresholds(estimator)
    planned = plan(estimator, infer_signature(estimator, X))
    base = X.dropna().iloc[[0]]

    def inputs(changes: list[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Copies of the base row, each block with one input changed."""
        n = sum(len(values) for _, values in changes)
        data = {c: np.repeat(base[c].to_numpy(), n) for c in base.columns}
        data.update({c: data[c].astype(np.float64) for c in NUMBERS})
        at = 0
        for column, values in changes:
            data[column][at:at + len(values)] = values
            at += len(values)
        return data

    def scikit_learn(data: dict[str, np.ndarray]) -> np.ndarray:
        frame = pd.DataFrame(data).astype({c: X[c].dtype for c in NUMBERS})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pre.transform(frame)
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

    spans = {c: (np.nanmin(X[c]), np.nanmax(X[c])) for c in NUMBERS}
    spans = {c: (lo - (hi - lo), hi + (hi - lo)) for c, (lo, hi) in spans.items()}
    ends = scikit_learn(inputs([(c, np.array(spans[c])) for c in NUMBERS]))
    ends = ends.reshape(len(NUMBERS), 2, -1)
    probes: list[tuple[str, int, float, bool]] = []  # column, feature, threshold, rising
    rng = np.random.default_rng(0)
    for c, (low_end, high_end) in zip(NUMBERS, ends):
        picks = [(j, t) for j in np.flatnonzero(low_end != high_end) if j in thresholds
                 for t in thresholds[j]]
        for i in sorted(rng.choice(len(picks), min(per_column, len(picks)), replace=False)):
            j, t = picks[i]
            probes.append((c, int(j), float(t), bool(high_end[j] > low_end[j])))
    assert probes, "no numeric split to place rows on"
    names = [p[0] for p in probes]
    feature = np.array([p[1] for p in probes])
    target = np.array([p[2] for p in probes])
    rising = np.array([p[3] for p in probes])
    a = np.array([spans[c][0] for c in names])
    b = np.array([spans[c][1] for c in names])
    at = np.arange(len(probes))
    for _ in range(80):  # halve [a, b] around each threshold
        middle = a + (b - a) / 2
        matrix = planned(inputs(list(zip(names, middle.reshape(-1, 1)))))
        left = (matrix[at, feature] <= target) == rising  # the threshold is above the middle
        a, b = np.where(left, middle, a), np.where(left, b, middle)
    real = np.array([c != "visits" for c in names])  # whole numbers cannot sit on x.5
    sides = scikit_learn(inputs(list(zip(names, np.stack([a, b], axis=1)))))
    below, above = sides[2 * at, feature], sides[2 * at + 1, feature]
    low, high = np.where(rising, below, above), np.where(rising, above, below)
    on = (low <= target) & (high > target) & (np.nextafter(a, np.inf) == b)
    assert on[real].mean() >= 0.9, f"{(~on[real]).sum()} of {real.sum()} missed a threshold"
    a, b = np.where(real, a, np.floor(a)), np.where(real, b, np.ceil(b))
    frame = pd.DataFrame(inputs(list(zip(names, np.stack([a, b], axis=1)))))
    return frame.astype({c: X[c].dtype for c in NUMBERS})


@pytest.mark.parametrize("kind,make,runtime,tolerance",
                         [m[1:] for m in MEMBERS], ids=[m[0] for m in MEMBERS])
def test_the_zoo_compiles_and_answers_as_scikit_learn(kind, make, runtime, tolerance):
    estimator, X = fitted(make, kind)
    outcome, model = compiled(estimator, X)
    assert outcome.data is not None, outcome.note
    assert outcome.runtime == runtime and model.runtime == runtime, outcome.note
    assert "float64 preprocessing plan" in outcome.note, outcome.note
    fresh = table(400, 11)
    assert model.compiled.prepare(typed(model, fresh)) is not None  # compiled, not a fallback
    assert_same(model, estimator, fresh, tolerance)
    rows = odd_rows(12)
    assert_same(model, estimator, rows, tolerance)
    for i in (0, 12, 22, 31, 36, 41):  # one row per call, as a single-row request
        assert_same(model, estimator, rows.iloc[[i]], tolerance)
    if runtime == "native":
        edges = threshold_rows(estimator, X)
        prepared = model.compiled.prepare(typed(model, edges))
        assert prepared is not None and len(prepared[1]) <= len(edges) // 10  # the trees answer
        assert_same(model, estimator, edges, tolerance)


def test_a_forest_over_the_node_budget_runs_as_a_guarded_float32_graph_after_the_plan():
    """Too large for native code: the float32 graph after the float64 plan, each value the
    float32 comparison could settle differently (guarded on the plan's matrix) answered by
    scikit-learn, so threshold rows still come out exactly."""
    make = lambda: Pipeline([  # noqa: E731
        ("pre", columns(imputed(StandardScaler()), onehot())),
        ("model", RandomForestClassifier(n_estimators=8, max_depth=8, random_state=0))])
    estimator, X = fitted(make, "binary")
    signature = infer_signature(estimator, X)
    sample = coerce(frame_to_table(X.head(300)), signature).frame
    outcome = compile_version(estimator, signature, sample, native=True, max_nodes=100)
    assert outcome.runtime == "onnx" and outcome.data is not None, outcome.note
    assert "float32" in outcome.note and "tree nodes exceed the 100" in outcome.note
    model = LoadedModel("m", 1, estimator, signature, "0" * 64, compiled=load_runner(
        outcome.data, hashlib.sha256(outcome.data).hexdigest(), signature, estimator, "onnx"))
    edges = threshold_rows(estimator, X)
    assert len(model.compiled.prepare(typed(model, edges))[1]) > 0  # guarded, not guessed
    assert_same(model, estimator, edges, TOLERANCE)
    assert_same(model, estimator, odd_rows(5), TOLERANCE)


@pytest.mark.parametrize("numbers,why", [
    (FunctionTransformer(lambda x: x * 2), "FunctionTransformer with func=<lambda>"),
    (imputed(FunctionTransformer(np.cumsum, kw_args={"axis": 1})),
     "FunctionTransformer with func=cumsum"),
], ids=["lambda", "across-columns"])
def test_what_stops_the_plan_is_named(numbers, why):
    make = lambda: Pipeline([  # noqa: E731
        ("pre", columns(numbers, onehot())),
        ("model", HistGradientBoostingClassifier(max_iter=5, random_state=0))])
    estimator, X = fitted(make, "binary")
    with pytest.raises(NotCompiled, match=r"step 'pre > num.*" + why.replace("(", r"\(")):
        plan(estimator, infer_signature(estimator, X))
    outcome, model = compiled(estimator, X)
    assert outcome.data is None and model.runtime == "sklearn"
    assert "native trees not used: step 'pre > num" in outcome.note, outcome.note
    assert why in outcome.note


@pytest.mark.parametrize("ensemble,why", [
    (lambda: VotingClassifier([
        ("forest", RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0)),
        ("logistic", LogisticRegression(max_iter=500))], voting="hard"),
     "a hard VotingClassifier's members vote labels: not compiled"),
    (lambda: VotingClassifier([
        ("logistic", LogisticRegression(max_iter=500)), ("bayes", GaussianNB())],
        voting="soft"),
     "no member of the VotingClassifier is a tree ensemble treelite compiles"),
], ids=["hard", "no-tree-member"])
def test_a_voting_ensemble_native_trees_cannot_take_says_why(ensemble, why):
    make = lambda: Pipeline([  # noqa: E731
        ("pre", columns(imputed(StandardScaler()), onehot())), ("model", ensemble())])
    estimator, X = fitted(make, "binary")
    outcome, model = compiled(estimator, X)
    assert outcome.data is None and model.runtime == "sklearn", outcome.note
    assert f"native trees not used: {why}" in outcome.note, outcome.note
    assert_same(model, estimator, odd_rows(3), 1e-12)


def test_a_stack_whose_final_estimator_gives_no_probabilities_compiles_for_its_labels():
    make = lambda: Pipeline([  # noqa: E731
        ("pre", columns(imputed(StandardScaler()), onehot())),
        ("model", StackingClassifier([
            ("forest", RandomForestClassifier(n_estimators=6, max_depth=5, random_state=0)),
            ("bayes", GaussianNB())], final_estimator=LinearSVC(), cv=3))])
    estimator, X = fitted(make, "binary")
    outcome, model = compiled(estimator, X)
    assert outcome.runtime == "native" and outcome.data is not None, outcome.note
    assert "(labels identical; float64)" in outcome.note and not model.has_probabilities
    assert_same(model, estimator, odd_rows(7), TOLERANCE)
    assert_same(model, estimator, threshold_rows(estimator, X), TOLERANCE)


def test_a_voting_ensembles_members_over_the_node_budget_are_named():
    make = ZOO[[m[0] for m in ZOO].index("soft-voting-scaled-onehot")][2]
    estimator, X = fitted(make, "binary")
    signature = infer_signature(estimator, X)
    sample = coerce(frame_to_table(X.head(300)), signature).frame
    outcome = compile_version(estimator, signature, sample, native=True, max_nodes=100)
    assert outcome.data is None, outcome.note
    assert "tree nodes in the members exceed the 100 compiled at registration" in outcome.note


def test_a_classifier_without_probabilities_compiles_in_float64_or_says_why():
    """LinearSVC has no predict_proba: only a float64 form, verified on its labels, would do;
    skl2onnx has none for it, and the note names the class and the converter's reason."""
    make = lambda: Pipeline([  # noqa: E731
        ("pre", columns(imputed(StandardScaler()), onehot())), ("model", LinearSVC())])
    estimator, X = fitted(make, "binary")
    outcome, model = compiled(estimator, X)
    if outcome.data is not None:
        assert outcome.note.endswith("(labels identical; float64)"), outcome.note
        assert_same(model, estimator, odd_rows(2), LINEAR)
        return
    assert model.runtime == "sklearn" and "float32" not in outcome.note
    assert "no ONNX conversion for LinearSVC (NotImplementedError: post_transform 'NONE' is " \
           "not supported with double.)" in outcome.note, outcome.note


def test_a_transformer_from_outside_scikit_learn_is_named():
    from tests.estimators import FailsOnHighCharges  # any class that is not scikit-learn's

    class Doubler(StandardScaler):
        pass

    Doubler.__module__ = FailsOnHighCharges.__module__
    make = lambda: Pipeline([  # noqa: E731
        ("pre", columns(imputed(Doubler()), onehot())), ("model", Ridge())])
    estimator, X = fitted(make, "regression")
    with pytest.raises(NotCompiled, match=r"step 'pre > num > doubler' \(tests\.estimators\.Doubler\) "
                                          r"is not a scikit-learn transformer"):
        plan(estimator, infer_signature(estimator, X))


def test_unknown_categories_an_encoder_refuses_go_to_scikit_learn():
    """OneHotEncoder(handle_unknown='error'): the plan does not answer a call holding an
    unseen category; scikit-learn does (and raises, so that row alone fails)."""
    make = lambda: Pipeline([  # noqa: E731
        ("pre", columns(imputed(StandardScaler()), OneHotEncoder())),
        ("model", HistGradientBoostingClassifier(max_iter=10, random_state=0))])
    estimator, X = fitted(make, "binary")
    outcome, model = compiled(estimator, X)
    assert outcome.runtime == "native", outcome.note
    rows = table(20, 4)
    rows.loc[3, "plan"] = "enterprise"
    assert model.compiled.prepare(typed(model, rows)) is None
    pred = model.predict(typed(model, rows))
    assert [f.row for f in pred.failures] == [3]
    keep = rows.drop(index=3)
    assert pred.labels.tolist() == estimator.predict(keep).tolist()


def test_the_plan_is_scikit_learns_matrix_bit_for_bit():
    """Every zoo member's plan against the fitted preprocessing's own transform, on odd rows
    (the verification at registration checks the reference rows the same way)."""
    for name, kind, make, _, _ in ZOO:
        estimator, X = fitted(make, kind)
        signature = infer_signature(estimator, X)
        rows = odd_rows(3)
        got = plan(estimator, signature)(typed(LoadedModel("m", 1, estimator, signature,
                                                            "0" * 64), rows))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = estimator[:-1].transform(rows)
        want = np.asarray(want.toarray() if hasattr(want, "toarray") else want, dtype=float)
        assert got is not None, name
        assert np.array_equal(got, want, equal_nan=True), name


def _mostly(**kw: Any) -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="most_frequent", **kw), onehot())


@pytest.mark.parametrize("numbers, text", [
    (imputed(StandardScaler(), SplineTransformer(n_knots=4)), _mostly()),
    (imputed(SplineTransformer(degree=2, extrapolation="linear", include_bias=False)),
     _mostly()),
    (imputed(RobustScaler(), SplineTransformer(knots="quantile", extrapolation="linear",
                                                order="F")), onehot()),
    (make_pipeline(StandardScaler(), SplineTransformer(degree=1, handle_missing="zeros")),
     onehot()),
    (imputed(PolynomialFeatures(2)), _mostly()),
    (imputed(PolynomialFeatures(3, interaction_only=True, include_bias=False)), onehot()),
    (imputed(StandardScaler(), PolynomialFeatures((2, 3), order="F")), onehot()),
    (imputed(PolynomialFeatures((2, 2), include_bias=False)), onehot()),
    (imputed(StandardScaler()),
     make_pipeline(SimpleImputer(missing_values="north", strategy="constant",
                                 fill_value="elsewhere"), onehot())),
    (imputed(StandardScaler()), make_pipeline(SimpleImputer(missing_values=None,
                                                            strategy="most_frequent"),
                                              ordinal())),
], ids=["spline", "spline-linear", "spline-quantile-F", "spline-zeros", "poly2",
        "poly3-interaction", "poly-2to3-F", "poly-only2", "text-marker", "text-none"])
def test_spline_polynomial_and_text_imputer_steps_are_the_plans_own(numbers, text):
    """Splines, polynomial features and text imputers are planned with the same numpy and
    scipy calls scikit-learn makes (not delegated to its transform, whose validation is most of
    a one-row call), bit for bit on odd rows: values far outside the knots, gaps, zeros."""
    from sklearn.base import clone

    estimator, X = fitted(lambda: Pipeline([("pre", columns(clone(numbers), clone(text))),
                                            ("model", LogisticRegression(max_iter=300))]),
                          "binary")
    signature = infer_signature(estimator, X)
    planned = plan(estimator, signature)
    assert not planned.delegates
    rows = odd_rows(4)
    got = planned(typed(LoadedModel("m", 1, estimator, signature, "0" * 64), rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = estimator[:-1].transform(rows)
    assert got is not None
    assert np.array_equal(got, np.asarray(want, dtype=float), equal_nan=True)
