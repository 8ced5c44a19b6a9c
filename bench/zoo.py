"""The bench's zoo: pipelines of the kinds users bring, beside the demo model.

Each entry builds, trains and writes one scikit-learn pipeline (artifact and reference sample) on
the demo's churn data, so every server and the raw call can be measured on the same rows. The
shapes are those issue 21 names: trees behind scalers, imputers and encoders; linear models behind
polynomial and spline features; neighbours; a voting ensemble; a regression; XGBoost and LightGBM
when installed; a 20-column forest (the widest a spreadsheet sends). ``small=True`` trains a
quick version of each (few rows, few trees) for the tests, which check that every entry
registers and scores.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

# the spline model's parts, which the default allowlist leaves to an admin's review
SPLINE_TYPES = ("scipy._lib.array_api_compat.numpy._aliases.asarray",
                "scipy.interpolate._bsplines.BSpline")
WIDE_EXTRA = [f"x{i}" for i in range(14)]  # numbers beside the demo's six columns: 20 in all


@dataclass(frozen=True)
class ZooModel:
    """One pipeline shape: how to build it (``small`` for the tests' quick version), on which
    columns, and what it needs installed."""

    name: str
    shape: str
    build: Callable[[bool], Any]
    wide: bool = False
    regression: bool = False
    integer_labels: bool = False  # the boosting libraries' classifiers want 0/1 targets
    needs: str | None = None

    def available(self) -> bool:
        return self.needs is None or importlib.util.find_spec(self.needs) is not None


def zoo_frame(n: int, seed: int = 11, wide: bool = False) -> tuple[pd.DataFrame, pd.Series,
                                                                     pd.Series]:
    """Inputs (with the demo's missing monthly charges), churn labels and a continuous target
    (a customer's yearly spend) for ``n`` customers; ``wide`` adds 14 numeric columns."""
    from server.demo import FEATURES, TARGET, make_churn_data

    data = make_churn_data(n, seed=seed)
    frame = data[FEATURES].copy()
    rng = np.random.default_rng(seed)
    if wide:
        extra = rng.normal(0, 1, (n, len(WIDE_EXTRA))).round(3)
        frame = pd.concat([frame, pd.DataFrame(extra, columns=WIDE_EXTRA)], axis=1)
    spend = (12 * frame["monthly_charges"].fillna(60.0) + 40 * frame["support_calls"]
             - 2 * frame["tenure_months"] + rng.normal(0, 30, n)).round(2)
    return frame, data[TARGET], spend


def zoo_rows(model: ZooModel, n: int, seed: int = 5) -> list[list]:
    """``n`` request rows for ``model`` (plain Python values, missing charges filled, so the
    naive app's DataFrame has the dtypes the pipeline was trained on)."""
    frame, _, _ = zoo_frame(n, seed=seed, wide=model.wide)
    frame["monthly_charges"] = frame["monthly_charges"].fillna(60.0)
    return [[v.item() if hasattr(v, "item") else v for v in row]
            for row in frame.itertuples(index=False)]


def _encoded(numbers: Any, wide: bool = False, categories: Any = None) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    from server.demo import CATEGORICAL, NUMERIC

    return ColumnTransformer([
        ("num", numbers, NUMERIC + (WIDE_EXTRA if wide else [])),
        ("cat", categories if categories is not None else OneHotEncoder(
            handle_unknown="ignore", sparse_output=False), CATEGORICAL)])


def _imputed(*steps: Any) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    return make_pipeline(SimpleImputer(strategy="median"), *steps)


def _trees(small: bool, full: int) -> int:
    return 10 if small else full


def scaled_hgb(small: bool) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("pre", _encoded(StandardScaler())), ("model", HistGradientBoostingClassifier(
        max_iter=_trees(small, 100), random_state=0))])


def imputed_extratrees(small: bool) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    ordinal = make_pipeline(SimpleImputer(strategy="most_frequent"), OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1))
    return Pipeline([("pre", _encoded(SimpleImputer(strategy="mean"), categories=ordinal)),
                     ("model", ExtraTreesClassifier(n_estimators=_trees(small, 100),
                                                    min_samples_leaf=3, random_state=0))])


def scaled_forest(small: bool) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("pre", _encoded(_imputed(StandardScaler()))), (
        "model", RandomForestClassifier(n_estimators=_trees(small, 100), max_depth=12,
                                        random_state=0))])


def spline_logistic(small: bool) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    return Pipeline([("pre", _encoded(_imputed(StandardScaler(), SplineTransformer()))),
                     ("model", LogisticRegression(max_iter=1000))])


def poly_logistic(small: bool) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    return Pipeline([("pre", _encoded(_imputed(PolynomialFeatures(2), StandardScaler()))),
                     ("model", LogisticRegression(max_iter=1000))])


def knn(small: bool) -> Any:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("pre", _encoded(_imputed(StandardScaler()))),
                     ("model", KNeighborsClassifier(n_neighbors=15))])


def soft_voting(small: bool) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("pre", _encoded(_imputed(StandardScaler()))), ("model", VotingClassifier([
        ("logistic", LogisticRegression(max_iter=1000)),
        ("forest", RandomForestClassifier(n_estimators=_trees(small, 50), max_depth=8,
                                          random_state=0)),
        ("boosted", HistGradientBoostingClassifier(max_iter=_trees(small, 50), random_state=0))],
        voting="soft"))])


def quantile_gbr(small: bool) -> Any:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import QuantileTransformer

    return Pipeline([("pre", _encoded(_imputed(QuantileTransformer(n_quantiles=100)))),
                     ("model", GradientBoostingRegressor(n_estimators=_trees(small, 100),
                                                         max_depth=4, random_state=0))])


def xgboost_pipeline(small: bool) -> Any:
    from sklearn.pipeline import Pipeline
    from xgboost import XGBClassifier

    return Pipeline([("pre", _encoded(_imputed())), ("model", XGBClassifier(
        n_estimators=_trees(small, 100), max_depth=6, n_jobs=1))])


def lightgbm_pipeline(small: bool) -> Any:
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("pre", _encoded(_imputed(StandardScaler()))), ("model", LGBMClassifier(
        n_estimators=_trees(small, 100), num_leaves=31, n_jobs=1, verbose=-1))])


def wide_forest(small: bool) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline([("pre", _encoded(_imputed(), wide=True)), ("model", RandomForestClassifier(
        n_estimators=_trees(small, 50), max_depth=10, random_state=0))])


ZOO: tuple[ZooModel, ...] = (
    ZooModel("scaled_hgb", "StandardScaler + one-hot before HistGradientBoosting", scaled_hgb),
    ZooModel("imputed_extratrees", "imputers + ordinal encoding before ExtraTrees",
             imputed_extratrees),
    ZooModel("scaled_forest", "imputer + StandardScaler + one-hot before a RandomForest",
             scaled_forest),
    ZooModel("spline_logistic", "imputer, scaler and splines + one-hot before "
             "LogisticRegression", spline_logistic),
    ZooModel("poly_logistic", "imputer, degree-2 polynomial features and scaler + one-hot "
             "before LogisticRegression", poly_logistic),
    ZooModel("knn", "imputer + scaler + one-hot before 15 nearest neighbours", knn),
    ZooModel("soft_voting", "soft voting of logistic regression, a forest and boosted trees",
             soft_voting),
    ZooModel("quantile_gbr", "imputer + quantile transform + one-hot before a "
             "GradientBoostingRegressor (regression)", quantile_gbr, regression=True),
    ZooModel("xgboost", "imputer + one-hot before XGBoost", xgboost_pipeline,
             integer_labels=True, needs="xgboost"),
    ZooModel("lightgbm", "imputer + scaler + one-hot before LightGBM", lightgbm_pipeline,
             integer_labels=True, needs="lightgbm"),
    ZooModel("wide_forest", "20 columns (17 numbers, 3 one-hot texts) into a 50-tree "
             "RandomForest", wide_forest, wide=True),
)


def available() -> list[ZooModel]:
    """The zoo entries whose libraries are installed."""
    return [m for m in ZOO if m.available()]


def by_name(name: str) -> ZooModel:
    return next(m for m in ZOO if m.name == name)


def train(model: ZooModel, folder: Path, small: bool = False) -> dict[str, Path]:
    """Fit ``model`` and write ``folder/NAME.skops`` and its reference sample (1,000 rows of
    the training inputs, missing values kept)."""
    import skops.io as sio

    frame, labels, spend = zoo_frame(800 if small else 5000, seed=11, wide=model.wide)
    target = spend if model.regression else (
        (labels == "yes").astype(int) if model.integer_labels else labels)
    fitted = model.build(small).fit(frame, target)
    paths = {"artifact": folder / f"{model.name}.skops",
             "sample": folder / f"{model.name}_sample.csv"}
    sio.dump(fitted, paths["artifact"])
    frame.head(1000).to_csv(paths["sample"], index=False)
    return paths


def reference(fitted: Any, rows: list[list]) -> tuple[list[Any], np.ndarray | None]:
    """In-process answers on ``rows``: labels (or values) and, for a classifier, probabilities,
    from one call where the model has ``predict_proba``."""
    frame = pd.DataFrame(rows, columns=list(fitted.feature_names_in_))
    if hasattr(fitted, "predict_proba"):
        proba = fitted.predict_proba(frame)
        return fitted.classes_[proba.argmax(axis=1)].tolist(), proba
    return fitted.predict(frame).tolist(), None
