"""A neighbours model's search tree, one object per thread: the same answers, the same arrays,
counters of its own (what two threads querying one tree fought over)."""
from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, RadiusNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from server.scoring.runtime import LoadedModel
from server.scoring.search_trees import PerThread, searches_a_tree
from server.scoring.signature import infer_signature


def data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    # whole numbers: many training rows at the same distance, where a search's choices show
    X = pd.DataFrame({"a": rng.integers(0, 5, n).astype(float), "b": rng.normal(0, 1, n),
                      "c": rng.integers(0, 3, n).astype(float),
                      "kind": rng.choice(["x", "y", "z"], n)})
    return X, (X["a"] + X["c"] + rng.normal(0, 1, n) > 3).astype(int).to_numpy()


def pipeline(model: Any) -> Pipeline:
    return Pipeline([("pre", ColumnTransformer([
        ("num", StandardScaler(), ["a", "b", "c"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["kind"])])),
        ("model", model)])


def tree_of(model: Any) -> Any:
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
    return model._tree


MODELS = {
    "knn-kd-tree": lambda: pipeline(KNeighborsClassifier(n_neighbors=7, algorithm="kd_tree")),
    "knn-ball-tree-distance": lambda: pipeline(KNeighborsClassifier(
        n_neighbors=5, algorithm="ball_tree", weights="distance")),
    "knn-regressor": lambda: pipeline(KNeighborsRegressor(n_neighbors=4, algorithm="kd_tree")),
    "radius": lambda: pipeline(RadiusNeighborsClassifier(radius=1.5, algorithm="ball_tree",
                                                         outlier_label="most_frequent")),
    "bare-knn": lambda: KNeighborsClassifier(n_neighbors=3, algorithm="kd_tree"),
}


def fitted(name: str) -> tuple[Any, pd.DataFrame]:
    X, y = data(400, 0)
    model = MODELS[name]()
    if not hasattr(model, "steps"):
        X = X.drop(columns="kind")
    return model.fit(X, y), data(300, 1)[0][list(X.columns)]


def answers(model: Any, X: pd.DataFrame) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = [np.asarray(model.predict(X))]
        if hasattr(model, "predict_proba"):
            out.append(np.asarray(model.predict_proba(X)))
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_each_thread_queries_a_tree_of_its_own_over_the_same_arrays(name):
    model, X = fitted(name)
    per_thread = PerThread()
    mine = per_thread.of(model)
    assert mine is not model and per_thread.of(model) is mine  # one copy per thread, kept
    shared, own = tree_of(model), tree_of(mine)
    assert own is not shared
    for a, b in zip(shared.get_arrays(), own.get_arrays()):
        assert np.shares_memory(a, b)  # nothing copied
    expected = answers(model, X)
    shared.reset_n_calls()
    own.reset_n_calls()
    for got, want in zip(answers(mine, X), expected):
        assert np.array_equal(got, want)
    assert own.get_n_calls() > 0 and shared.get_n_calls() == 0

    others: list[Any] = []
    thread = threading.Thread(target=lambda: others.append(per_thread.of(model)))
    thread.start()
    thread.join()
    assert others[0] is not mine and tree_of(others[0]) is not own


def test_a_brute_force_search_or_another_model_is_used_as_it_is():
    X, y = data(200, 3)
    brute = pipeline(KNeighborsClassifier(algorithm="brute")).fit(X, y)
    assert not searches_a_tree(brute) and PerThread().of(brute) is brute
    plain = pipeline(LogisticRegression()).fit(X, y)
    assert PerThread().of(plain) is plain


def test_concurrent_requests_never_touch_the_loaded_models_own_tree():
    """Through the scoring path, from several threads at once: the answers scikit-learn gives,
    and the loaded model's tree counts no query (each thread searched its own)."""
    model, X = fitted("knn-kd-tree")
    loaded = LoadedModel("m", 1, model, infer_signature(model, X), "0" * 64)
    expected = answers(model, X)
    loaded.predict(X.head(3))  # the version's first call checks its plan on the model itself
    shared = tree_of(model)
    shared.reset_n_calls()
    results: list[Any] = []

    def score() -> None:
        for start in range(0, len(X), 50):
            results.append((start, loaded.predict(X.iloc[start:start + 50])))

    threads = [threading.Thread(target=score) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 * 6
    for start, pred in results:
        assert not pred.failures
        assert pred.labels.tolist() == expected[0][start:start + 50].tolist()
        assert np.array_equal(pred.probabilities, expected[1][start:start + 50])
    assert shared.get_n_calls() == 0
