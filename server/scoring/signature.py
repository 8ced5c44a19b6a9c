"""The one description of a model's inputs and outputs.

Every codec, the Excel template, the Power BI types and the OData metadata derive from
:class:`Signature`; it is inferred once, at registration, from the fitted estimator (feature names,
encoder categories, classes) and a sample of inputs (dtypes, ranges), and stored with the version.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from ..errors import ModelRejected

ColumnType = Literal["number", "integer", "string", "boolean"]
MAX_SAMPLE_CATEGORIES = 100


@dataclass(frozen=True)
class Column:
    """One model input, in the order the model expects it."""

    name: str
    type: ColumnType
    categories: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    accepts_missing: bool = True
    accepts_unknown: bool | None = None

    @property
    def is_categorical(self) -> bool:
        return self.categories is not None


@dataclass(frozen=True)
class Output:
    """What the model returns: class labels (with probabilities) or a regression value."""

    kind: Literal["classification", "regression"]
    type: ColumnType
    classes: tuple[Any, ...] | None = None
    probabilities: bool = False


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Column, ...]
    output: Output
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c.name: i for i, c in enumerate(self.inputs)})

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def column(self, name: str) -> Column:
        return self.inputs[self.index[name]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [_drop_none(asdict(c)) for c in self.inputs],
            "output": _drop_none(asdict(self.output)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Signature":
        inputs = []
        for raw in data["inputs"]:
            raw = dict(raw)
            if raw.get("categories") is not None:
                raw["categories"] = tuple(raw["categories"])
            inputs.append(Column(**raw))
        out = dict(data["output"])
        if out.get("classes") is not None:
            out["classes"] = tuple(out["classes"])
        return cls(inputs=tuple(inputs), output=Output(**out))

    def with_columns(self, columns: Iterable[Column]) -> "Signature":
        return Signature(inputs=tuple(columns), output=self.output)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def to_python(value: Any) -> Any:
    """numpy scalars to plain Python, so signatures and results serialise as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


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
        elif hasattr(est, "categories_") and len(getattr(est, "categories_")) == len(columns):
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
    encoded = _encoder_categories(estimator, names, sample)
    columns = []
    for name in names:
        cats = encoded.get(name)
        values = sample[name] if sample is not None else None
        if values is not None:
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
        if values is not None and col_type in ("number", "integer") and values.notna().any():
            minimum, maximum = float(values.min()), float(values.max())
        columns.append(Column(name=name, type=col_type, categories=cats,
                              minimum=minimum, maximum=maximum))
    return Signature(inputs=tuple(columns), output=_infer_output(estimator))


def _infer_output(estimator: Any) -> Output:
    classes = getattr(estimator, "classes_", None)
    if is_classifier(estimator) or classes is not None:
        if classes is None:
            raise ModelRejected("the classifier has no classes_: is it fitted?")
        arr = np.asarray(classes)
        return Output(kind="classification", type=_type_of(arr),
                      classes=tuple(to_python(c) for c in arr),
                      probabilities=hasattr(estimator, "predict_proba"))
    return Output(kind="regression", type="number")


def example_frame(signature: Signature, n_rows: int = 3) -> pd.DataFrame:
    """Plausible rows built from the signature alone, for smoke tests and templates."""
    data: dict[str, list[Any]] = {}
    for col in signature.inputs:
        if col.categories:
            data[col.name] = [col.categories[i % len(col.categories)] for i in range(n_rows)]
        elif col.type in ("number", "integer"):
            lo = col.minimum if col.minimum is not None else 0.0
            hi = col.maximum if col.maximum is not None else lo + 1.0
            points = np.linspace(lo, hi, n_rows + 2)[1:-1]
            data[col.name] = [int(round(p)) if col.type == "integer" else float(p) for p in points]
        elif col.type == "boolean":
            data[col.name] = [bool(i % 2) for i in range(n_rows)]
        else:
            data[col.name] = ["" for _ in range(n_rows)]
    return pd.DataFrame(data, columns=signature.names)
