"""XGBoost, LightGBM and CatBoost models for the boosting tests: small tables with a text category
(missing in places), a missing-prone number, and held-out rows that add missing values and a
category the models never saw. Each model is trained the way its library's documentation shows
for pandas categories."""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio

CITIES = ["v", "x", "y", "z"]
LIBRARIES = ("xgboost", "lightgbm", "catboost")
KINDS = ("binary", "multiclass", "regression")
MODELS = [f"{lib}-{kind}" for lib in LIBRARIES for kind in KINDS]
TREES = 8


def table(n: int, seed: int) -> pd.DataFrame:
    """Inputs as a CSV or a JSON request carries them: text, empty cells as missing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3),
                          "city": rng.choice(CITIES, n).astype(object),
                          "size": rng.integers(1, 4, n),
                          "b": rng.normal(size=n).round(3)})
    frame.loc[::7, "a"] = np.nan
    frame.loc[3::11, "city"] = None
    return frame


def target(frame: pd.DataFrame, kind: str) -> np.ndarray:
    city = frame["city"].isin(["y", "v"]).to_numpy() if "city" in frame else 0.0
    score = frame["a"].fillna(0.5).to_numpy() + 1.5 * city + 0.3 * frame["size"].to_numpy() \
        - 0.5 * frame["b"].to_numpy()
    if kind == "binary":
        return (score > np.median(score)).astype(int)
    if kind == "multiclass":
        return np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    return score + np.random.default_rng(5).normal(scale=0.1, size=len(score))


def held_out() -> pd.DataFrame:
    """Rows none of the models saw, with missing numbers, missing and unseen categories."""
    rows = table(24, seed=99)
    rows.loc[[1, 9], "city"] = "w"  # not a training category
    rows.loc[[2, 9], "a"] = np.nan
    rows.loc[4, "city"] = None
    return rows.reset_index(drop=True)


def sample(lib: str) -> pd.DataFrame:
    """The registration sample, as the training data looked (CatBoost's: missing cities spelt
    "none", as it was trained)."""
    rows = table(60, seed=3)
    return rows.fillna({"city": "none"}) if lib == "catboost" else rows


def unfitted(lib: str) -> Any:
    """A small classifier of ``lib``, for use inside a Pipeline."""
    if lib == "xgboost":
        import xgboost as xgb

        return xgb.XGBClassifier(n_estimators=TREES, max_depth=3, n_jobs=1)
    import lightgbm as lgb

    return lgb.LGBMClassifier(n_estimators=TREES, num_leaves=7, verbose=-1, n_jobs=1)


def library_frame(lib: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The inputs as a data scientist hands them to the library itself: XGBoost and LightGBM
    take the text column as pandas ``category`` (each library maps it to its training
    categories by value), CatBoost takes text (with missing values spelt "none" when trained)."""
    if lib == "catboost" or "city" not in frame:
        return frame
    return frame.assign(city=frame["city"].astype("category"))


def make(lib: str, kind: str, frame: pd.DataFrame | None = None, **params: Any) -> Any:
    """A fitted model of ``lib`` for ``kind`` on ``frame`` (the training table by default)."""
    frame = table(240, seed=1) if frame is None else frame
    y = target(frame, kind)
    classifier = kind != "regression"
    if lib == "xgboost":
        import xgboost as xgb

        cls = xgb.XGBClassifier if classifier else xgb.XGBRegressor
        return cls(n_estimators=TREES, max_depth=3, enable_categorical=True, n_jobs=1,
                   **params).fit(library_frame(lib, frame), y)
    if lib == "lightgbm":
        import lightgbm as lgb

        cls = lgb.LGBMClassifier if classifier else lgb.LGBMRegressor
        labels = np.array(["low", "mid", "high"])[y] if kind == "multiclass" else y
        return cls(n_estimators=TREES, num_leaves=7, min_child_samples=5, verbose=-1,
                   n_jobs=1, **params).fit(library_frame(lib, frame), labels)
    import catboost as cb

    cls = cb.CatBoostClassifier if classifier else cb.CatBoostRegressor
    labels = np.array(["low", "mid", "high"])[y] if kind == "multiclass" else y
    return cls(iterations=TREES, depth=3, verbose=0, thread_count=1,
               cat_features=["city"] if "city" in frame else None,
               allow_writing_files=False, **params).fit(
        frame.fillna({"city": "none"}), labels)


@cache
def model(name: str) -> Any:
    """One of :data:`MODELS`, trained once per test session."""
    lib, kind = name.split("-")
    return make(lib, kind)


def save(estimator: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.skops"
    sio.dump(estimator, path)
    return path


def library_answers(estimator: Any, lib: str, frame: pd.DataFrame
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """The library's own labels (or values) and probabilities for ``frame``."""
    given = library_frame(lib, frame)
    labels = np.asarray(estimator.predict(given)).reshape(len(frame))
    probs = np.asarray(estimator.predict_proba(given)) if hasattr(estimator, "predict_proba") \
        else None
    return labels, probs
