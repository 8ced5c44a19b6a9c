"""XGBoost, LightGBM and CatBoost through their scikit-learn interfaces: the allowlist, the
signature, scoring equal to the library on held-out rows (missing values, unseen categories),
native trees where treelite compiles them, and hostile artifacts refused."""
from __future__ import annotations

import functools
import importlib.util
import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from server.codecs.file_reader import frame_to_table
from server.deploy.registration import RegistrationRequest
from server.errors import ModelRejected, UnsafeArtifact
from server.scoring import boosting
from server.scoring.allowlist import allowlist
from server.scoring.coerce import coerce
from server.scoring.compiled.compiler import TOLERANCE, compile_version
from server.scoring.compiled.native import NativeRunner
from server.scoring.loader import load_artifact, untrusted_types
from server.scoring.predict import score_with
from server.scoring.runtime import LoadedModel
from server.scoring.signature import infer_signature
from server.types import ScoreOptions
from tests.boosters import (
    CITIES,
    MODELS,
    held_out,
    library_answers,
    library_frame,
    make,
    model,
    sample,
    save,
    table,
    target,
    unfitted,
)
from tests.conftest import PROBABILITY_TOLERANCE

ALLOWLIST = Path(__file__).parents[2] / "server" / "scoring" / "allowlist"


def registered(services: Any, tmp_path: Path, name: str, estimator: Any) -> LoadedModel:
    """``estimator`` registered as the HTTP upload and the CLI do (a CSV-typed sample), and
    loaded back from the store as a worker loads it."""
    path = save(estimator, tmp_path, name)
    lib = boosting.library(estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator)
    info = services.register(RegistrationRequest(name=name, artifact=path, filename=path.name,
                                                 actor="test", sample=sample(lib or "")))
    return services.scorer.cache.get(info)


def test_each_library_lists_what_its_models_hold():
    """Every type a fitted wrapper's skops file names is listed, with a reason, and only where
    the library is installed; the lists say which extra installs it."""
    for lib in ("xgboost", "lightgbm", "catboost"):
        data = tomllib.loads((ALLOWLIST / f"{lib}.toml").read_text())
        assert data["library"] == {"module": lib, "extra": lib}
        assert all(why.strip() for why in data["types"].values())
        for kind in ("binary", "regression"):
            found = sio.get_untrusted_types(data=sio.dumps(model(f"{lib}-{kind}")))
            assert found and untrusted_types(found) == [], (lib, found)


def test_a_server_without_the_library_names_the_extra(tmp_path, monkeypatch):
    path = save(model("xgboost-binary"), tmp_path, "m")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "xgboost" else real(name, *a))
    allowlist.cache_clear()
    try:
        assert allowlist().reason("xgboost.core.Booster") is None
        with pytest.raises(ModelRejected) as refused:
            load_artifact(path, "skops")
    finally:
        monkeypatch.undo()
        allowlist.cache_clear()
    assert "install scorebridge[xgboost]" in refused.value.detail
    assert "xgboost.sklearn.XGBClassifier" in refused.value.detail
    assert allowlist().reason("xgboost.core.Booster")


def _objective(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return p - y, np.ones_like(p)


class _Loss:
    def calc_ders_range(self, approxes: Any, targets: Any, weights: Any) -> list:
        return [(t - a, -1.0) for a, t in zip(approxes, targets)]


@pytest.mark.filterwarnings("ignore:Failed to import numba")  # CatBoost, on a custom loss
def test_callables_inside_a_booster_are_refused(tmp_path):
    """A custom objective, metric or loss is code: refused with its name, whichever library holds
    it; a command planted as the objective never runs (its marker file never appears)."""
    marker = tmp_path / "ran"
    hostile = make("xgboost", "binary")
    hostile.set_params(objective=functools.partial(os.system, f"touch {marker}"))
    cases = {"hostile": (hostile, "system"),
             "lgb": (make("lightgbm", "regression", objective=_objective), "_objective"),
             "xgb": (make("xgboost", "regression", objective=_objective), "_objective"),
             "xgb-metric": (make("xgboost", "binary", eval_metric=_objective), "_objective")}
    frame = table(60, seed=2).drop(columns="city")
    cases["cb"] = (__import__("catboost").CatBoostRegressor(
        iterations=3, verbose=0, loss_function=_Loss(), eval_metric="RMSE",
        allow_writing_files=False).fit(frame, frame["b"]), "_Loss")
    for name, (estimator, fragment) in cases.items():
        with pytest.raises(UnsafeArtifact) as refused:
            load_artifact(save(estimator, tmp_path, name), "skops")
        assert "outside the server's allowlist" in refused.value.detail
        assert fragment in refused.value.detail, (name, refused.value.detail)
    assert not marker.exists()


def test_the_signature_comes_from_the_fitted_model():
    """Names from feature_names_in_ (CatBoost: feature_names_); the training categories from the
    booster itself, without a sample; their type from the categories."""
    for name in ("xgboost-binary", "lightgbm-multiclass"):
        sig = infer_signature(model(name), None)
        assert sig.names == ["a", "city", "size", "b"]
        city = sig.column("city")
        assert (city.type, city.categories) == ("string", tuple(boosting.categories(
            model(name))["city"])) == ("string", ("v", "x", "y", "z"))
        assert sig.column("a").type == "number"
    sig = infer_signature(model("catboost-binary"), table(30, seed=4))
    assert sig.names == ["a", "city", "size", "b"] and sig.column("city").type == "string"
    assert sig.output.classes == (0, 1)
    assert infer_signature(model("lightgbm-multiclass"), None).output.classes == \
        ("high", "low", "mid")


def test_integer_categories_keep_their_type_and_unseen_ones_follow_the_library(services,
                                                                              tmp_path):
    """A number column trained as pandas categories: codes restored from the model; an unseen
    value goes through LightGBM as missing, while XGBoost refuses it, so coercion does."""
    frame = table(240, seed=1)
    frame["size"] = frame["size"].astype("category")
    for lib, unseen_ok in (("lightgbm", True), ("xgboost", False)):
        estimator = make(lib, "binary", frame=frame)
        assert boosting.categories(estimator)["size"] == (1, 2, 3)
        assert infer_signature(estimator, None).column("size").type == "integer"
        cats = boosting.as_category(np.array([3.0, 1.0, np.nan, 7.0]), pd.Index([1, 2, 3]))
        assert list(cats.categories) == [1, 2, 3, 7] and cats.codes.tolist() == [2, 0, -1, 3]
        model_ = LoadedModel("m", 1, estimator, infer_signature(estimator, None), "")
        rows = pd.DataFrame({"a": [0.1, 0.2], "city": ["x", "y"], "size": [2, 7], "b": [0., 1.]})
        assert (not model_.predict(rows).failures) is unseen_ok
        loaded = registered(services, tmp_path, lib, estimator)
        assert loaded.signature.column("size").accepts_unknown is unseen_ok
        result = score_with(loaded, frame_to_table(rows), ScoreOptions(errors="row"))
        if unseen_ok:
            assert result.errors == [] and len(result.positions) == 2
        else:  # named by coercion, not left to the model's exception
            assert [(e.row, e.column) for e in result.errors] == [(1, "size")]
            assert "unknown category 7.0; expected one of: 1, 2, 3" in result.errors[0].message


def test_catboost_takes_whole_numbers_in_a_categorical_feature_even_beside_a_missing_one():
    """Coercion widens an integer column with a missing value to float, which CatBoost refuses
    in a categorical feature: the whole numbers go as integers, the missing one fails alone."""
    import catboost as cb

    frame = table(240, seed=1).drop(columns="city")
    estimator = cb.CatBoostClassifier(iterations=8, depth=3, verbose=0, thread_count=1,
                                      cat_features=["size"], allow_writing_files=False).fit(
        frame, frame["size"] * frame["b"] > 0)
    loaded = LoadedModel("m", 1, estimator, infer_signature(estimator, frame), "")
    rows = pd.DataFrame({"a": [0.1, 0.2, 0.3], "size": [1.0, np.nan, 3.0], "b": [1., -1., 2.]})
    pred = loaded.predict(rows)
    assert [f.row for f in pred.failures] == [1] and pred.ok.tolist() == [0, 2]
    whole = rows.iloc[[0, 2]].astype({"size": int})
    np.testing.assert_allclose(pred.probabilities, estimator.predict_proba(whole), rtol=0,
                               atol=PROBABILITY_TOLERANCE)


def test_a_lightgbm_model_whose_categories_cannot_be_placed_is_refused():
    """An ordered pandas category, or an explicit categorical_feature beside the pandas ones:
    which list is whose cannot be told, so the model is refused, not guessed at."""
    frame = table(240, seed=1)
    frame["size"] = pd.Categorical(frame["size"], categories=[1, 2, 3], ordered=True)
    with pytest.raises(ModelRejected, match="cannot tell which"):
        infer_signature(make("lightgbm", "binary", frame=frame), None)
    # as many categorical features as lists, but not the same columns: the codes tell
    import lightgbm as lgb

    frame = library_frame("lightgbm", table(240, seed=1)).assign(k=lambda f: np.arange(len(f)) % 5)
    explicit = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(
        frame, frame["b"] > 0, categorical_feature=["k"])
    with pytest.raises(ModelRejected, match="cannot tell which"):
        infer_signature(explicit, None)


@pytest.mark.parametrize("name", MODELS)
def test_scores_equal_the_library_on_held_out_rows(services, tmp_path, name):
    """Registered and scored through coercion, the loaded model and its outputs: the library's
    own labels and probabilities, on rows with missing numbers, missing and unseen categories.
    CatBoost refuses a missing category (it takes text only), so those rows are errors."""
    lib = name.split("-")[0]
    estimator = model(name)
    loaded = registered(services, tmp_path, name, estimator)
    city = loaded.signature.column("city")
    assert city.accepts_unknown is True and city.accepts_missing is (lib != "catboost")
    rows = held_out()
    result = score_with(loaded, frame_to_table(rows), ScoreOptions(errors="row"))
    missing_city = set(np.flatnonzero(rows["city"].isna()))
    assert {e.row for e in result.errors} == (missing_city if lib == "catboost" else set())
    scored = result.positions
    labels, probs = library_answers(estimator, lib, rows.iloc[scored].reset_index(drop=True))
    if loaded.signature.output.kind == "regression":
        np.testing.assert_allclose(np.asarray(result.labels, dtype=float), labels, rtol=1e-12)
    else:
        assert np.asarray(result.labels).tolist() == labels.tolist()
        np.testing.assert_allclose(result.probs, probs, rtol=0, atol=PROBABILITY_TOLERANCE)
    assert any("unknown category 'w'" in w.message for w in result.warnings)


def test_a_pipeline_with_an_encoder_before_the_booster(services, tmp_path):
    """The booster as the last step after an OrdinalEncoder (unknown and missing text become
    NaN, which the booster handles as missing): scored as the pipeline itself scores."""
    frame = table(240, seed=1)
    for lib in ("xgboost", "lightgbm"):
        encode = ColumnTransformer([("city", OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan), ["city"])],
            remainder="passthrough")
        pipeline = make_pipeline(encode, unfitted(lib)).fit(frame, frame["a"].fillna(0) > 0)
        loaded = registered(services, tmp_path, f"pipe-{lib}", pipeline)
        assert loaded.signature.column("city").categories == tuple(CITIES)
        rows = held_out()
        result = score_with(loaded, frame_to_table(rows), ScoreOptions(errors="row"))
        assert result.errors == []
        assert np.asarray(result.labels).tolist() == pipeline.predict(rows).tolist()
        np.testing.assert_allclose(result.probs, pipeline.predict_proba(rows), rtol=0,
                                   atol=PROBABILITY_TOLERANCE)
        # native trees after the encoder's float64 graph: an unseen city reaches the compiled
        # trees as the encoder's NaN, and is answered as the pipeline answers it
        reference = coerce(frame_to_table(sample(lib)), loaded.signature).frame
        outcome = compile_version(pipeline, loaded.signature, reference, native=True)
        assert outcome.runtime == "native" and outcome.data is not None, outcome.note
        compiled = LoadedModel("m", 1, pipeline, loaded.signature, "", compiled=NativeRunner(
            outcome.data, loaded.signature, np.asarray(pipeline.classes_)))
        known = rows[rows["city"].notna()].reset_index(drop=True)  # missing text: the library
        assert (known["city"] == "w").sum() == 2
        typed = coerce(frame_to_table(known), loaded.signature).columns
        feed, edge = compiled.compiled.prepare(typed)
        assert set(np.flatnonzero(known["city"] == "w")) - set(edge.tolist())  # compiled
        pred = compiled.predict(typed)
        assert pred.labels.tolist() == pipeline.predict(known).tolist()
        np.testing.assert_allclose(pred.probabilities, pipeline.predict_proba(known), rtol=0,
                                   atol=TOLERANCE)


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_numeric_boosters_take_native_trees_verified_against_the_library(lib, kind):
    """XGBoost and LightGBM without categorical splits compile to native trees, verified at
    registration; the compiled answers equal the library's (rows with a missing number are
    the library's to answer)."""
    frame = table(240, seed=1).drop(columns="city")
    estimator = make(lib, kind, frame=frame)
    sig = infer_signature(estimator, frame)
    outcome = compile_version(estimator, sig, frame, native=True)
    assert outcome.data is not None and outcome.runtime == "native", outcome.note
    assert outcome.note.startswith("treelite (native trees): verified")
    classes = np.asarray(estimator.classes_) if kind != "regression" else None
    loaded = LoadedModel("m", 1, estimator, sig, "", compiled=NativeRunner(outcome.data, sig,
                                                                           classes))
    rows = held_out().drop(columns="city")
    pred = loaded.predict(rows)
    labels, probs = library_answers(estimator, lib, rows)
    if classes is None:
        np.testing.assert_allclose(pred.labels.astype(float), labels, rtol=TOLERANCE,
                                   atol=TOLERANCE)
    else:
        assert pred.labels.tolist() == labels.tolist()
        np.testing.assert_allclose(pred.probabilities, probs, rtol=0, atol=TOLERANCE)


def test_runtime_notes_say_why_a_booster_keeps_its_own_predictor():
    """Categorical splits are not compiled, CatBoost never is; the note names the library."""
    rows = table(60, seed=3)
    for name, fragment in (("xgboost-binary", "splits on categories"),
                           ("lightgbm-regression", "splits on categories"),
                           ("catboost-multiclass", "treelite does not compile CatBoost")):
        estimator = model(name)
        sig = infer_signature(estimator, rows)
        outcome = compile_version(estimator, sig, rows, native=True)
        library = boosting.LIBRARIES[name.split("-")[0]]
        assert outcome.data is None and outcome.note.startswith(f"{library}'s own predictor (")
        assert fragment in outcome.note
    off = compile_version(model("lightgbm-binary"), infer_signature(model("lightgbm-binary"),
                                                                    rows), rows, native=False)
    assert "native trees are turned off" in off.note


def test_library_frame_is_what_the_library_takes():
    """The reference the tests compare with: the libraries score it without complaint."""
    rows = held_out()
    for name in MODELS:
        lib = name.split("-")[0]
        given = library_frame(lib, rows if lib != "catboost" else rows.fillna({"city": "none"}))
        assert len(np.asarray(model(name).predict(given)).reshape(-1)) == len(rows)


@pytest.fixture
def settings(settings):
    return replace(settings, compile=False)  # the native path has its own tests here


def test_a_pipeline_passing_pandas_categories_through_to_the_booster(services, tmp_path):
    """The booster after a ColumnTransformer with pandas output that imputes the numbers and
    passes the category column through by name: the category is restored at the pipeline's
    input, so the pipeline scores as it does on the data scientist's own frame."""
    from sklearn.impute import SimpleImputer

    frame = library_frame("lightgbm", table(240, seed=1))
    numbers = ["a", "size", "b"]
    for lib in ("xgboost", "lightgbm"):
        before = ColumnTransformer([("num", SimpleImputer(), numbers)], remainder="passthrough",
                                   verbose_feature_names_out=False).set_output(transform="pandas")
        booster = unfitted(lib)
        if lib == "xgboost":
            booster.set_params(enable_categorical=True)
        pipeline = make_pipeline(before, booster).fit(frame, target(frame, "binary"))
        assert set(boosting.categories(pipeline)) == {"city"}
        loaded = registered(services, tmp_path, f"{lib}-passthrough", pipeline)
        rows = held_out()
        result = score_with(loaded, frame_to_table(rows), ScoreOptions(errors="row"))
        assert result.errors == [] and len(result.positions) == len(rows)
        expected = pipeline.predict_proba(library_frame(lib, rows))
        np.testing.assert_allclose(result.probs, expected, rtol=0, atol=PROBABILITY_TOLERANCE)
