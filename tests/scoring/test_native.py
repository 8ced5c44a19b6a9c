"""Native trees (treelite/tl2cgen, compiled with the machine's C compiler) against scikit-learn,
family by family: exact in float64 with no rows sent back to scikit-learn (not even inputs on a
split threshold or between a threshold and its float32 rounding), and a clean fallback to the
ONNX graph, with the reason, when native code is not possible."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from server.config import Settings
from server.scoring.compiled import native
from server.scoring.compiled.compiler import TOLERANCE, compile_version
from server.scoring.compiled.estimator import split_guards
from server.scoring.compiled.stored import load_runner
from server.scoring.runtime import LoadedModel
from server.scoring.signature import infer_signature
from tests.conftest import jobs_in_process_and_on_dask, register_file
from tests.live import ROOT
from tests.scoring.test_compiled import data, pipeline, typed

EXACT = 1e-12  # float64 arithmetic in another order: far inside the 1e-6 promise

FAMILIES = [
    (HistGradientBoostingClassifier(max_iter=40, random_state=0), "multiclass"),
    (HistGradientBoostingClassifier(max_iter=40, random_state=0), "binary"),
    (HistGradientBoostingRegressor(max_iter=40, random_state=0), "regression"),
    (GradientBoostingClassifier(n_estimators=30, random_state=0), "binary"),
    (GradientBoostingRegressor(n_estimators=30, random_state=0), "regression"),
    (RandomForestClassifier(n_estimators=15, max_depth=7, random_state=0), "multiclass"),
    (ExtraTreesClassifier(n_estimators=15, max_depth=7, random_state=0), "binary"),
    (RandomForestRegressor(n_estimators=15, max_depth=7, random_state=0), "regression"),
]


def target(X, y, kind: str):
    if kind == "binary":
        return np.where(y == "high", "yes", "no").astype(object)
    if kind == "regression":
        return X["x1"].to_numpy() * 3 + X["x2"].to_numpy() / 10
    return y


def training(kind: str, final, n: int = 1500, seed: int = 1):
    X, y = data(n, seed)
    y = target(X, y, kind)
    if isinstance(final, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        X.loc[X.index[::37], "x1"] = np.nan  # missing numbers: HGB routes them, so must we
    return X, y


def compiled_model(estimator, X, native_trees: bool = True, max_nodes: int | None = None):
    signature = infer_signature(estimator, X)
    sample = typed(LoadedModel("m", 1, estimator, signature, "0" * 64), X.head(500))
    outcome = compile_version(estimator, signature, sample, native=native_trees,
                              max_nodes=max_nodes)
    runner = None
    if outcome.data is not None:
        runner = load_runner(outcome.data, hashlib.sha256(outcome.data).hexdigest(), signature,
                             estimator, outcome.runtime)
    return outcome, LoadedModel("m", 1, estimator, signature, "0" * 64, compiled=runner)


def edge_rows(estimator, signature, X):
    """Rows whose x2 sits on split thresholds, one float64 step either side of them, and on
    their float32 roundings: where a float32 engine and scikit-learn can disagree."""
    thresholds = split_guards(estimator, signature)["x2"][:60]
    values = np.concatenate([thresholds, np.nextafter(thresholds, np.inf),
                             np.nextafter(thresholds, -np.inf),
                             thresholds.astype(np.float32).astype(np.float64)])
    rows = X.sample(len(values), replace=True, random_state=3).reset_index(drop=True)
    rows["x2"] = values
    return rows


def assert_same(model: LoadedModel, estimator, rows, classification: bool,
                tolerance: float = EXACT) -> None:
    pred = model.predict(typed(model, rows))
    if classification:
        assert pred.labels.tolist() == estimator.predict(rows).tolist()
        assert np.abs(pred.probabilities - estimator.predict_proba(rows)).max() <= tolerance
    else:
        assert np.abs(pred.labels - estimator.predict(rows)).max() <= tolerance


@pytest.mark.parametrize("final,kind", FAMILIES,
                         ids=[f"{type(f).__name__}-{k}" for f, k in FAMILIES])
def test_native_trees_match_scikit_learn_exactly(final, kind):
    X, y = training(kind, final)
    estimator = pipeline(final, scale=False).fit(X, y)
    outcome, model = compiled_model(estimator, X)
    assert outcome.runtime == "native", outcome.note
    assert re.match(r"treelite \(native trees\): verified on \d+ reference rows .*float64\)$",
                    outcome.note), outcome.note
    assert model.runtime == "native"
    fresh, _ = training(kind, final, 3000, seed=2)
    fresh.loc[:9, "city"] = "unseen-city"  # unknown categories, as production sees them
    classification = kind != "regression"
    assert_same(model, estimator, fresh, classification)  # the wide (all cores) predictor
    assert_same(model, estimator, fresh.head(1), classification)  # and the one-thread one
    edges = edge_rows(estimator, model.signature, X)
    # float64 compares as scikit-learn does: no row needs scikit-learn, not even these, except
    # numbers whose low 32 bits are all ones (tl2cgen would read them as missing)
    low = edges["x2"].to_numpy().view(np.uint64) & np.uint64(0xFFFF_FFFF)
    aliased = np.flatnonzero(low == np.uint64(0xFFFF_FFFF)) if model.compiled._narrow is False \
        else np.empty(0, dtype=np.int64)
    assert model.compiled.prepare(typed(model, edges))[1].tolist() == aliased.tolist()
    assert_same(model, estimator, edges, classification)


def test_forest_rows_with_missing_numbers_are_answered_by_scikit_learn():
    """Forests learn where missing values go (scikit-learn 1.4+); native code is not trusted
    with that: those rows are scikit-learn's own answer, the rest native."""
    X, y = training("binary", RandomForestClassifier())
    X.loc[X.index[::29], "x1"] = np.nan
    estimator = pipeline(RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
                         scale=False).fit(X, y)
    outcome, model = compiled_model(estimator, X)
    assert outcome.runtime == "native", outcome.note
    fresh, _ = training("binary", RandomForestClassifier(), 400, seed=3)
    fresh.loc[fresh.index[::7], "x1"] = np.nan
    edge = model.compiled.prepare(typed(model, fresh))[1]
    assert edge.tolist() == np.flatnonzero(fresh["x1"].isna()).tolist()
    assert_same(model, estimator, fresh, True)


def test_native_runner_is_safe_across_threads():
    """tl2cgen's predictors take one call at a time; a worker's threads share one runner."""
    X, y = training("binary", HistGradientBoostingClassifier())
    estimator = pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(X, y)
    _, model = compiled_model(estimator, X)
    fresh, _ = data(2500, 5)
    batches = [fresh, fresh.head(3), fresh.iloc[100:2200], fresh.head(1)] * 3
    expected = [estimator.predict_proba(b) for b in batches]
    got: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(len(batches))

    def score(i: int) -> None:
        barrier.wait()
        got[i] = model.predict(typed(model, batches[i])).probabilities

    threads = [threading.Thread(target=score, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(got) == list(range(len(batches)))
    for i, probs in got.items():
        assert np.abs(probs - expected[i]).max() <= EXACT


def test_tl2cgen_reads_the_model_without_a_version_warning(capfd):
    # tl2cgen's bundled Treelite prints this to the process's stderr, past Python's warnings
    X, y = training("binary", RandomForestClassifier())
    estimator = pipeline(RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0),
                         scale=False).fit(X, y)
    outcome, _ = compiled_model(estimator, X)
    assert outcome.runtime == "native", outcome.note
    out, err = capfd.readouterr()
    assert "Treelite version" not in out + err, err


def test_a_checkpoint_the_bundled_reader_cannot_echo_is_handed_over_as_it_is(monkeypatch):
    import treelite

    X, y = training("binary", RandomForestClassifier())
    model = treelite.sklearn.import_model(
        RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0).fit(X[["x1", "x2"]], y))
    assert native._for_tl2cgen(model) is not model  # relabelled: read back byte for byte
    monkeypatch.setattr(native, "_reserialize", lambda data: data[:-1])  # something lost
    assert native._for_tl2cgen(model) is model
    monkeypatch.setattr(native, "_reserialize", lambda data: None)  # refused
    assert native._for_tl2cgen(model) is model


def test_without_a_c_compiler_the_onnx_graph_answers(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine with neither gcc nor clang
    assert native.toolchain() is None
    X, y = training("binary", HistGradientBoostingClassifier())
    estimator = pipeline(HistGradientBoostingClassifier(max_iter=20, random_state=0)).fit(X, y)
    outcome, model = compiled_model(estimator, X)
    assert outcome.runtime == "onnx" and model.runtime == "onnx"
    assert outcome.note.startswith("onnxruntime: verified")
    assert outcome.note.endswith("native trees not used: no C compiler (gcc or clang) on this "
                                 "machine")
    assert_same(model, estimator, data(200, 4)[0], True, TOLERANCE)  # float32 graph: 1e-6


@pytest.mark.parametrize("final,scale,reason", [
    (DecisionTreeClassifier(max_depth=5, random_state=0), False,
     "DecisionTreeClassifier is not a tree ensemble treelite compiles"),
], ids=["single-tree"])
def test_unsupported_trees_fall_back_with_the_reason(final, scale, reason):
    X, y = data(600, 7)
    estimator = pipeline(final, scale=scale).fit(X, y)
    outcome, model = compiled_model(estimator, X)
    assert outcome.runtime != "native" and model.runtime != "native"
    assert outcome.note.endswith(f"native trees not used: {reason}"), outcome.note
    assert model.predict(typed(model, X)).labels.tolist() == estimator.predict(X).tolist()


def test_large_ensembles_are_not_compiled():
    X, y = data(600, 8)  # (SCOREBRIDGE_NATIVE_TREES_MAX_NODES: gcc's time grows with the nodes)
    estimator = pipeline(RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y)
    outcome, _ = compiled_model(estimator, X, max_nodes=500)
    assert outcome.runtime == "onnx"
    assert re.search(r"native trees not used: [\d,]+ tree nodes exceed the 500 compiled at "
                     r"registration$", outcome.note), outcome.note


def test_other_models_never_try_native_code():
    X, y = data(600, 9)
    estimator = pipeline(LogisticRegression(max_iter=300)).fit(X, y)
    outcome, _ = compiled_model(estimator, X)
    assert outcome.runtime == "onnx" and "native" not in outcome.note


def test_setting_off_keeps_the_onnx_graph():
    X, y = training("binary", HistGradientBoostingClassifier())
    estimator = pipeline(HistGradientBoostingClassifier(max_iter=20, random_state=0)).fit(X, y)
    outcome, _ = compiled_model(estimator, X, native_trees=False)
    assert outcome.runtime == "onnx" and "native" not in outcome.note


def test_a_tampered_bundle_is_refused():
    X, y = training("binary", HistGradientBoostingClassifier())
    estimator = pipeline(HistGradientBoostingClassifier(max_iter=20, random_state=0)).fit(X, y)
    outcome, model = compiled_model(estimator, X)
    checksum = hashlib.sha256(outcome.data).hexdigest()
    tampered = outcome.data[:-1] + bytes([outcome.data[-1] ^ 1])
    with pytest.raises(ValueError, match="checksum"):
        load_runner(tampered, checksum, model.signature, estimator, "native")


@pytest.fixture
def settings(tmp_path, database_url):
    """As a user gets it: native trees on (the suite's default turns them off for speed)."""
    return Settings(home=tmp_path / "home", database_url=database_url, background=False,
                    rate_limiting=False, native_trees=True)


def test_registered_demo_is_served_by_native_trees(client, demo_files, demo_model):
    from tests.conftest import churn_rows

    resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    assert resp.status_code == 201, resp.json
    assert resp.json["runtime"]["engine"] == "treelite", resp.json["runtime"]
    version = client.get("/api/v1/models/churn/versions/1").json
    assert version["runtime"] == resp.json["runtime"]
    for n in (1, 2500):  # one row, and a batch on the wide predictor
        rows = churn_rows(n, seed=n)
        got = client.post("/api/v1/models/churn/predict", scope="score", json={
            "records": json.loads(rows.to_json(orient="records"))}).json
        assert got["predictions"] == demo_model.predict(rows).tolist()
        assert np.abs(np.asarray(got["probabilities"])
                      - demo_model.predict_proba(rows)).max() <= EXACT


def test_batch_jobs_use_native_trees_in_process_and_on_dask(client, services, demo_files,
                                                           demo_model):
    """Jobs load the version's native bundle themselves (Dask workers too): same answers."""
    pytest.importorskip("distributed")
    from tests.conftest import churn_rows

    registered = register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    assert registered.json["runtime"]["engine"] == "treelite"
    frame = churn_rows(4000, seed=21)
    local, dasked, _ = jobs_in_process_and_on_dask(client, services, frame)
    pd.testing.assert_frame_equal(local, dasked)
    assert local["prediction"].tolist() == demo_model.predict(frame).tolist()


def test_native_trees_work_when_openmp_is_limited_to_one_thread():
    """Servers often run with OMP_NUM_THREADS=1; tl2cgen refuses a predictor with more threads
    than OpenMP allows (seen: it failed verification and fell back to the ONNX graph)."""
    script = """
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from tests.scoring.test_native import assert_same, compiled_model, data, pipeline, training
X, y = training("binary", HistGradientBoostingClassifier())
estimator = pipeline(HistGradientBoostingClassifier(max_iter=20, random_state=0)).fit(X, y)
outcome, model = compiled_model(estimator, X)
assert outcome.runtime == "native", outcome.note
assert_same(model, estimator, data(2500, 4)[0], True)  # the wide predictor too
print("ok")
"""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
