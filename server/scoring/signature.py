"""Signature inference: a fitted estimator and a sample of inputs in, a :class:`Signature` out.

It runs once, at registration (feature names, encoder categories, classes from the estimator;
dtypes and ranges from the sample). The signature type itself lives in :mod:`server.types.signature`
because every layer reads it; inference needs scikit-learn and stays with scoring.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from ..errors import ModelRejected
from ..types.signature import Column, ColumnType, Output, Signature, to_python
from . import boosting

MAX_SAMPLE_CATEGORIES = 100


def _type_of(values: np.ndarray | pd.Series) -> ColumnType:
    dtype = getattr(values, "dtype", np.asarray(values).dtype)
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    return "string"


def _feature_names(estimator: Any, sample: pd.DataFrame | None) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = boosting.feature_names(estimator)
    if names is not None:
        return [str(n) for n in names]
    n = getattr(estimator, "n_features_in_", None)
    if sample is not None and (n is None or n == sample.shape[1]):
        return [str(c) for c in sample.columns]
    if n is None:
        raise ModelRejected("cannot tell the model's inputs: it has neither feature_names_in_ nor "
                            "n_features_in_; register it with a --sample of its input columns")
    return [f"x{i}" for i in range(int(n))]


def _encoder_categories(estimator: Any, names: list[str],
                        sample: pd.DataFrame | None) -> dict[str, tuple[Any, ...]]:
    """Categories known to fitted encoders inside pipelines and column transformers."""
    found: dict[str, tuple[Any, ...]] = {}

    def visit(est: Any, columns: list[str]) -> None:
        if hasattr(est, "steps"):  # Pipeline
            # column-preserving steps (imputers, scalers) pass the raw columns on; stop at the
            # first step that encodes or splits them, as later steps see derived features
            for _, step in est.steps:
                if step in (None, "passthrough"):
                    continue
                visit(step, columns)
                if hasattr(step, "categories_") or hasattr(step, "transformers_"):
                    break
        elif hasattr(est, "transformers_"):  # ColumnTransformer
            for _, trans, cols in est.transformers_:
                if trans in ("drop",) or cols is None:
                    continue
                visit(trans, _resolve_columns(cols, columns, sample))
        elif hasattr(est, "categories_") and len(est.categories_) == len(columns):
            for col, cats in zip(columns, est.categories_):
                clean = tuple(to_python(c) for c in cats if not _is_missing(c))
                found[col] = clean

    visit(estimator, names)
    return found


def _resolve_columns(cols: Any, columns: list[str], sample: pd.DataFrame | None) -> list[str]:
    if callable(cols):
        if sample is None:
            return []
        cols = cols(sample[columns])
    if isinstance(cols, slice):
        return columns[cols]
    arr = np.atleast_1d(np.asarray(cols))
    if arr.dtype == bool:
        return [c for c, keep in zip(columns, arr) if keep]
    if np.issubdtype(arr.dtype, np.integer):
        return [columns[i] for i in arr]
    return [str(c) for c in arr]


def _is_missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def infer_signature(estimator: Any, sample: pd.DataFrame | None) -> Signature:
    """Infer the signature from the fitted estimator and, when given, a sample of its inputs."""
    names = _feature_names(estimator, sample)
    if sample is not None:
        missing = [n for n in names if n not in sample.columns]
        if missing:
            raise ModelRejected(f"the sample lacks the model's input columns: {', '.join(missing)}")
    # a booster trained on pandas categories: their type is the categories', whatever the sample
    held = boosting.categories(estimator)
    encoded = {**_encoder_categories(estimator, names, sample), **held}
    columns = []
    for name in names:
        cats = encoded.get(name)
        values = sample[name] if sample is not None else None
        if name in held:
            col_type = _type_of(np.asarray(held[name]))
        elif values is not None:
            col_type = _type_of(values)
        elif cats is not None:
            col_type = _type_of(np.asarray(cats)) if cats else "string"
        else:
            col_type = "number"
        if cats is None and col_type == "string" and values is not None:
            uniques = pd.unique(values.dropna())
            if len(uniques) <= MAX_SAMPLE_CATEGORIES:
                cats = tuple(sorted(str(u) for u in uniques))
        minimum = maximum = None
        if values is not None and col_type in ("number", "integer") and values.notna().any() \
                and pd.api.types.is_numeric_dtype(values):
            minimum, maximum = float(values.min()), float(values.max())
        columns.append(Column(name=name, type=col_type, categories=cats,
                              minimum=minimum, maximum=maximum))
    return Signature(inputs=tuple(columns), output=_infer_output(estimator))


def _infer_output(estimator: Any) -> Output:
    classes = getattr(estimator, "classes_", None)
    # CatBoostRegressor answers classes_ with an empty list
    if is_classifier(estimator) or (classes is not None and len(classes)):
        if classes is None:
            raise ModelRejected("the classifier has no classes_: is it fitted?")
        arr = np.asarray(classes)
        return Output(kind="classification", type=_type_of(arr),
                      classes=tuple(to_python(c) for c in arr),
                      probabilities=hasattr(estimator, "predict_proba"))
    return Output(kind="regression", type="number")


def declare_types(signature: Signature, declared: dict[str, ColumnType],
                  sampled: bool) -> Signature:
    """``signature`` with the input types the artifact itself declares (an ONNX graph's inputs,
    an MLflow signature): they replace types that were only a default (no sample), widen an
    integer column to a number, and a real conflict refuses the model, naming the column."""
    unknown = [n for n in declared if n not in signature.index]
    if unknown:
        raise ModelRejected("the model declares inputs it does not take: " + ", ".join(unknown))
    columns = []
    for col in signature.inputs:
        want = declared.get(col.name)
        if want is None or want == col.type:
            columns.append(col)
            continue
        if sampled and not (col.type == "integer" and want == "number"):
            raise ModelRejected(f"input {col.name!r} is declared {want} by the model but the "
                                f"sample holds {col.type} values")
        numeric = want in ("number", "integer")
        columns.append(Column(**{**col.__dict__, "type": want,
                                 "categories": None if numeric else col.categories,
                                 "minimum": col.minimum if numeric else None,
                                 "maximum": col.maximum if numeric else None}))
    return signature.with_columns(columns)
