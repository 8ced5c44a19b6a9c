"""The one-call scikit-learn path for every family whose labels it takes as the arg-max of
``predict_proba``: labels are exactly ``predict()``'s on fresh rows and where probabilities tie
(rows where the arg-max is ambiguous are asked of ``predict``)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OrdinalEncoder
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from server.scoring.runtime import ARGMAX_FAMILIES, LoadedModel, final_estimator, takes_argmax
from server.scoring.signature import infer_signature

FINALS = [
    LogisticRegressionCV(Cs=3, max_iter=500), BernoulliNB(), MultinomialNB(), ComplementNB(),
    LinearDiscriminantAnalysis(), BaggingClassifier(n_estimators=5, random_state=0),
    AdaBoostClassifier(n_estimators=10, random_state=0),
    CalibratedClassifierCV(LogisticRegression(max_iter=500), cv=3),
    VotingClassifier([("lr", LogisticRegression(max_iter=500)),
                      ("knn", KNeighborsClassifier(4))], voting="soft"),
    StackingClassifier([("forest", RandomForestClassifier(n_estimators=5, random_state=0)),
                        ("bayes", MultinomialNB())], final_estimator=LogisticRegression(), cv=3),
]


def data(n: int, seed: int, classes: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Small integer inputs, so that rows repeat with different labels (ties happen)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.integers(0, 4, n).astype(float),
                      "b": rng.integers(0, 3, n).astype(float)})
    y = np.array(list("pqr"))[(X["a"] + X["b"] + rng.integers(0, 2, n)).astype(int) % classes]
    return X, y.astype(object)


def model_for(final) -> tuple[Pipeline, None]:
    pre = OrdinalEncoder() if isinstance(final, CategoricalNB) else MinMaxScaler()
    return Pipeline([("pre", pre), ("model", final)]), None


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("final", FINALS + [CategoricalNB()], ids=lambda e: type(e).__name__)
def test_labels_are_predicts_on_fresh_rows_and_ties(final, classes):
    estimator, _ = model_for(final)
    X, y = data(300, 1, classes)
    estimator.fit(X, y)
    assert takes_argmax(final)
    model = LoadedModel("m", 1, estimator, infer_signature(estimator, X), "0" * 64)
    assert model._argmax, "the one-call path is taken"
    fresh, _ = data(400, 2, classes)
    pred = model.predict(fresh)
    assert pred.labels.tolist() == estimator.predict(fresh).tolist()
    assert np.array_equal(pred.probabilities, estimator.predict_proba(fresh))


def test_tied_probabilities_are_settled_by_predict():
    # equal class counts everywhere: every probability is 0.5 and the arg-max alone would say "p"
    X = pd.DataFrame({"a": [0.0, 0.0, 1.0, 1.0], "b": [0.0, 0.0, 1.0, 1.0]})
    y = np.array(["p", "q", "q", "p"], dtype=object)
    for final in (BaggingClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=4,
                                    bootstrap=False, random_state=0), MultinomialNB()):
        estimator = Pipeline([("pre", MinMaxScaler()), ("model", final)]).fit(X, y)
        model = LoadedModel("m", 1, estimator, infer_signature(estimator, X), "0" * 64)
        pred = model.predict(X)
        assert pred.labels.tolist() == estimator.predict(X).tolist()


def test_a_hard_vote_is_not_taken_for_an_arg_max():
    hard = VotingClassifier([("lr", LogisticRegression()), ("nb", MultinomialNB())])
    X, y = data(100, 3, 2)
    estimator = Pipeline([("pre", MinMaxScaler()), ("model", hard)]).fit(X, y)
    model = LoadedModel("m", 1, estimator, infer_signature(estimator, X), "0" * 64)
    assert type(final_estimator(estimator)).__name__ in ARGMAX_FAMILIES
    assert not model._argmax  # no predict_proba: labels come from predict
    assert model.predict(X).labels.tolist() == estimator.predict(X).tolist()


def test_a_stack_whose_final_estimator_decides_otherwise_is_not_taken_for_an_arg_max():
    """SVC's predict() can disagree with its Platt probabilities: a stack ending in one keeps
    predict() for its labels."""
    stack = StackingClassifier([("bayes", MultinomialNB()), ("tree", DecisionTreeClassifier())],
                               final_estimator=SVC(probability=True, random_state=0), cv=3)
    X, y = data(200, 4, 2)
    estimator = Pipeline([("pre", MinMaxScaler()), ("model", stack)]).fit(X, y)
    model = LoadedModel("m", 1, estimator, infer_signature(estimator, X), "0" * 64)
    assert "SVC" not in ARGMAX_FAMILIES and not model._argmax
    assert model.predict(X).labels.tolist() == estimator.predict(X).tolist()
