"""scikit-learn's path after the float64 plan: the final estimator on the plan's matrix answers
exactly as the whole pipeline on the DataFrame, for rows the plan takes and (through the
pipeline) for rows it does not; pipelines it cannot stand in for keep running whole."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

from server.demo import FEATURES, TARGET, make_churn_data
from server.scoring.planned_fallback import PlannedFinal, planned_final
from server.scoring.reference_rows import typed_reference
from server.scoring.runtime import LoadedModel
from server.scoring.signature import infer_signature

NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
TEXT = ["contract", "payment_method", "internet_service"]


def _pre(numeric: object) -> ColumnTransformer:
    return ColumnTransformer([("num", numeric, NUMERIC),
                              ("cat", OneHotEncoder(handle_unknown="ignore",
                                                    sparse_output=False), TEXT)])


def _fit(final: object, numeric: object = None) -> tuple[Pipeline, pd.DataFrame]:
    data = make_churn_data(1500, seed=3)
    numeric = numeric or make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    model = Pipeline([("pre", _pre(numeric)), ("model", final)]).fit(data[FEATURES],
                                                                     data[TARGET])
    return model, data[FEATURES]


def _odd_rows(sample: pd.DataFrame) -> pd.DataFrame:
    """Ordinary rows, missing numbers, an unseen category and a missing text (the plan hands
    the last to the pipeline)."""
    rows = sample.sample(60, random_state=1).reset_index(drop=True).astype(object)
    rows.loc[0:9, "monthly_charges"] = None
    rows.loc[10:14, "contract"] = "a category never seen"
    rows.loc[15, "payment_method"] = None
    return rows


def _loaded(model: Pipeline, sample: pd.DataFrame) -> LoadedModel:
    signature = infer_signature(model, sample)
    return LoadedModel("m", 1, model, signature, "", reference=lambda: sample)


def test_a_voting_pipeline_answers_through_the_plan_exactly():
    final = VotingClassifier([("lr", LogisticRegression(max_iter=500)),
                              ("forest", RandomForestClassifier(20, random_state=0)),
                              ("hgb", HistGradientBoostingClassifier(max_iter=20))],
                             voting="soft")
    model, sample = _fit(final)
    loaded = _loaded(model, sample)
    rows = typed_reference(loaded.signature, _odd_rows(sample), None)
    got = loaded.predict(rows)
    assert isinstance(loaded._planned_final(), PlannedFinal)   # the plan is what answered
    assert got.failures == [] and list(got.ok) == list(range(len(rows)))
    assert got.labels.tolist() == model.predict(rows).tolist()
    np.testing.assert_array_equal(got.probabilities, model.predict_proba(rows))
    # one row at a time too (the plan's one-row path)
    for i in (0, 12, 15, 30):
        one = loaded.predict(rows.iloc[[i]])
        np.testing.assert_array_equal(one.probabilities, model.predict_proba(rows.iloc[[i]]))


def test_splines_before_a_logistic_regression():
    model, sample = _fit(LogisticRegression(max_iter=1000),
                         make_pipeline(SimpleImputer(), StandardScaler(), SplineTransformer()))
    loaded = _loaded(model, sample)
    rows = typed_reference(loaded.signature, _odd_rows(sample), None)
    got = loaded.predict(rows)
    assert isinstance(loaded._planned_final(), PlannedFinal)
    np.testing.assert_array_equal(got.probabilities, model.predict_proba(rows))


def test_a_final_estimator_that_selects_columns_by_name_runs_whole():
    """A stacking model whose members pick the transformed DataFrame's columns by name cannot
    take a matrix: the pipeline keeps answering, with the same answers."""
    pick = ColumnTransformer([("n", "passthrough", make_column_selector(pattern="^num"))])
    final = StackingClassifier([("lr", make_pipeline(pick, LogisticRegression(max_iter=500)))],
                               final_estimator=LogisticRegression())
    data = make_churn_data(800, seed=4)
    pre = _pre(make_pipeline(SimpleImputer(), StandardScaler())).set_output(transform="pandas")
    model = Pipeline([("pre", pre), ("model", final)]).fit(data[FEATURES], data[TARGET])
    signature = infer_signature(model, data[FEATURES])
    assert planned_final(model, signature, typed_reference(signature, data[FEATURES])) is None
    loaded = _loaded(model, data[FEATURES])
    rows = typed_reference(signature, data[FEATURES].head(20), None)
    np.testing.assert_array_equal(loaded.predict(rows).probabilities, model.predict_proba(rows))
    assert loaded._planned_final() is False


def test_a_bare_model_has_nothing_to_plan():
    data = make_churn_data(300, seed=5).fillna(0)
    bare = LogisticRegression(max_iter=500).fit(data[NUMERIC], data[TARGET])
    signature = infer_signature(bare, data[NUMERIC])
    assert planned_final(bare, signature, typed_reference(signature, data[NUMERIC])) is None


def test_a_missing_text_in_the_reference_rows_does_not_turn_the_plan_off():
    """The plan hands a row with a missing text to the pipeline; the check leaves such rows
    out, as checked_plan does, instead of giving up on the plan."""
    model, sample = _fit(LogisticRegression(max_iter=1000))
    holed = sample.copy().astype(object)
    holed.loc[holed.index[:3], "contract"] = None
    signature = infer_signature(model, sample)
    assert isinstance(planned_final(model, signature, typed_reference(signature, holed)),
                      PlannedFinal)
