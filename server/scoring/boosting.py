"""XGBoost, LightGBM and CatBoost through their scikit-learn interfaces: what scoring must know
of them that scikit-learn's own estimators say through ``feature_names_in_`` and their encoders.

A booster trained on pandas ``category`` columns needs those columns as ``category`` again, with
the training categories in their training order (the codes its trees split on), while coercion
hands text over as plain objects. The categories come from the fitted model itself (LightGBM's
``pandas_categorical``, XGBoost's stored categories), never from the request. Values not among
them are appended after the training categories, which is exactly what the library sees when a
caller's own frame holds an unseen category: LightGBM then reads it as missing, XGBoost sends it
down the "not in the split's set" branch. CatBoost takes its categorical features as text or
whole numbers and hashes them itself.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import ModelRejected

LIBRARIES = {"xgboost": "XGBoost", "lightgbm": "LightGBM", "catboost": "CatBoost"}
Adapter = Callable[[pd.DataFrame], pd.DataFrame]


def library(estimator: Any) -> str | None:
    """"xgboost", "lightgbm" or "catboost" for an estimator of one of them, else None."""
    root = type(estimator).__module__.partition(".")[0]
    return root if root in LIBRARIES else None


def runs_in(lib: str) -> str:
    """The runtime a booster takes when it is not compiled, as the runtime note says it."""
    import importlib.metadata as md

    for dist in ("xgboost-cpu", "xgboost") if lib == "xgboost" else (lib,):
        try:
            return f"{LIBRARIES[lib]}'s own predictor ({dist} {md.version(dist)})"
        except md.PackageNotFoundError:
            continue
    return f"{LIBRARIES[lib]}'s own predictor"


def feature_names(estimator: Any) -> list[str] | None:
    """CatBoost's input names (it has no ``feature_names_in_``), unless they are the ones it
    makes up for an unnamed array ("0", "1", ...)."""
    if library(estimator) != "catboost":
        return None
    names = [str(n) for n in getattr(estimator, "feature_names_", None) or []]
    return names if names and names != [str(i) for i in range(len(names))] else None


def categories(estimator: Any) -> dict[str, tuple[Any, ...]]:
    """Input column -> its training categories, for the columns a booster was trained on as
    pandas ``category``: a bare booster's, or those of a Pipeline's final booster that reach it
    under their input names (passed through a ColumnTransformer with pandas output). Elsewhere
    in a pipeline the encoders before the model hold the categories."""
    final = estimator
    while hasattr(final, "steps"):
        final = final.steps[-1][1]
    held = dict(_categories(final))
    if final is not estimator:
        inputs = {str(n) for n in getattr(estimator, "feature_names_in_", ())}
        held = {name: values for name, values in held.items() if name in inputs}
    return held


def _categories(estimator: Any) -> list[tuple[str, tuple[Any, ...]]]:
    lib = library(estimator)
    if lib == "lightgbm":
        booster: Any = getattr(estimator, "_Booster", None)
        stored = getattr(booster, "pandas_categorical", None) or []
        if not stored:
            return []
        names = list(booster.feature_name())
        # LightGBM keeps one list per pandas category column, and (with categorical_feature
        # "auto", its default) makes exactly those columns its categorical features
        columns = list(booster.params.get("categorical_column", []))
        infos = booster.dump_model(num_iteration=1)["feature_infos"]
        if len(columns) != len(stored) or any(
                infos[names[i]]["max_value"] >= len(values) for i, values in zip(columns, stored)):
            # an ordered category or an explicit categorical_feature beside pandas ones: the
            # model does not say which column each list belongs to
            raise ModelRejected(
                f"cannot tell which of this LightGBM model's {len(columns)} categorical inputs "
                f"hold its {len(stored)} pandas category lists; train it on unordered pandas "
                "'category' columns only, or encode them in a Pipeline step")
        return [(names[i], tuple(values)) for i, values in zip(columns, stored)]
    if lib == "xgboost":
        booster = estimator.get_booster()
        if "c" not in (booster.feature_types or []):
            return []
        if not hasattr(booster, "get_categories"):
            raise ModelRejected("this XGBoost model has categorical inputs, whose categories "
                                "XGBoost before 3.1 does not keep with the model: install "
                                "XGBoost 3.1 or later on the server, and retrain with it")
        # XGBoost 3.1+ keeps the categories of pandas columns; inputs trained as category
        # codes (numbers) have none and stay numbers
        stored = booster.get_categories(export_to_arrow=True).to_arrow() or []
        return [(str(name), tuple(values.to_pylist())) for name, values in stored
                if values is not None]
    return []


def adapter(estimator: Any) -> Adapter | None:
    """The frame as a bare booster needs it (see the module docstring), or None when the
    coerced frame is already right (scikit-learn models, pipelines, numeric boosters)."""
    lib = library(estimator)
    if lib == "catboost":
        indices = list(estimator.get_cat_feature_indices())
        return (lambda frame: _catboost_frame(frame, indices)) if indices else None
    known = {name: pd.Index(values) for name, values in categories(estimator).items()}
    if not known:
        return None
    return lambda frame: _category_frame(frame, known)


def _category_frame(frame: pd.DataFrame, known: dict[str, pd.Index]) -> pd.DataFrame:
    frame = frame.copy(deep=False)
    for name, training in known.items():
        if name in frame.columns:
            frame[name] = as_category(frame[name].to_numpy(), training)
    return frame


def as_category(values: np.ndarray, training: pd.Index) -> pd.Categorical:
    """``values`` as a pandas Categorical whose categories are ``training`` in order, followed
    by any other values present (in order of appearance); missing values stay missing."""
    codes = np.asarray(training.get_indexer(values), dtype=np.int64)
    unseen = (codes < 0) & ~pd.isna(values)
    categories = training
    if unseen.any():
        extra = pd.Index(pd.unique(values[unseen]))
        if training.dtype.kind in "iu":  # whole numbers (coercion checked) as the model's ints
            extra = extra.astype(training.dtype)
        categories = training.append(extra)
        codes[unseen] = len(training) + extra.get_indexer(values[unseen])
    return pd.Categorical.from_codes(codes, categories=categories)


def _catboost_frame(frame: pd.DataFrame, indices: list[int]) -> pd.DataFrame:
    """CatBoost refuses real numbers in a categorical feature: whole numbers (which coercion
    widens to float where a value is missing) go as the integers CatBoost was trained on."""
    frame = frame.copy(deep=False)
    for i in indices:
        if i < frame.shape[1] and frame.dtypes.iloc[i].kind == "f":
            values = frame.iloc[:, i].to_numpy()
            whole = np.empty(len(values), dtype=object)
            finite = ~np.isnan(values)
            whole[finite] = values[finite].astype(np.int64)
            whole[~finite] = np.nan
            frame[frame.columns[i]] = whole
    return frame


def categorical_splits(estimator: Any) -> str | None:
    """Why a booster's trees are not compiled here, when it splits on categories (the native
    path feeds numbers only; the library keeps those models)."""
    lib = library(estimator)
    categorical = (lib == "xgboost" and "c" in (estimator.get_booster().feature_types or [])) \
        or (lib == "lightgbm" and bool(estimator.booster_.params.get("categorical_column")))
    return "the model splits on categories, which the native path does not compile (it feeds " \
        "numbers only)" if categorical else None


def node_count(estimator: Any) -> int:
    """Nodes in every tree of an XGBoost or LightGBM model: what the C compiler's time grows
    with."""
    if library(estimator) == "xgboost":
        return sum(tree.count("\n") for tree in estimator.get_booster().get_dump())
    info = estimator.booster_.dump_model()["tree_info"]
    return sum(2 * int(tree["num_leaves"]) - 1 for tree in info)


def import_trees(estimator: Any) -> Any:
    """The booster as a treelite model."""
    import treelite

    if library(estimator) == "xgboost":
        return treelite.frontend.from_xgboost(estimator.get_booster())
    return treelite.frontend.from_lightgbm(estimator.booster_)
