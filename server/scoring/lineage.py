"""Which input column each feature of a fitted preprocessing step comes from.

A Pipeline's final estimator sees transformed features (one-hot indicators, spline bases, scaled
values); an explanation is about the caller's input columns. The owners are read from the fitted
transformers' structure (a ColumnTransformer's column lists and output slices, PolynomialFeatures'
powers, the feature names a per-column transformer gives its outputs), then checked on reference
rows: changing one input may only move the features attributed to it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ExplanationUnavailable

Owners = list[frozenset[str]]   # per transformed feature: the input columns it depends on


def feature_owners(pre: Any, inputs: list[str]) -> Owners:
    """The input columns each output feature of the fitted transformer ``pre`` depends on."""
    kind = type(pre).__name__
    if kind == "Pipeline":
        names, owners = list(inputs), [frozenset([c]) for c in inputs]
        for _, step in pre.steps:
            if step is None or step == "passthrough":
                continue
            index = {n: i for i, n in reversed(list(enumerate(names)))}
            step_owners = feature_owners(step, names)
            owners = [frozenset().union(*(owners[index[n]] for n in own)) for own in step_owners]
            try:
                names = [str(n) for n in step.get_feature_names_out(names)]
            except Exception:
                names = []
            if len(names) != len(owners):
                names = [f"x{i}" for i in range(len(owners))]
        return owners
    if kind == "ColumnTransformer":
        return _column_transformer(pre, inputs)
    if kind == "PolynomialFeatures":
        return [frozenset(inputs[j] for j in np.flatnonzero(row)) for row in pre.powers_]
    if len(inputs) == 1:
        return [frozenset(inputs)] * _width(pre, inputs)
    return _by_name(pre, inputs)


def _column_transformer(ct: Any, inputs: list[str]) -> Owners:
    known = list(getattr(ct, "feature_names_in_", inputs))
    width = sum(s.stop - s.start for s in ct.output_indices_.values())
    owners: list[frozenset[str] | None] = [None] * width
    for name, trans, columns in ct.transformers_:
        out = ct.output_indices_[name]
        if trans == "drop" or out.stop == out.start:
            continue
        cols = _column_names(columns, known)
        own = [frozenset([c]) for c in cols] if trans == "passthrough" else \
            feature_owners(trans, cols)
        if len(own) != out.stop - out.start:
            raise ExplanationUnavailable(f"the features of step {name!r} cannot be traced back "
                                         "to its input columns")
        owners[out.start:out.stop] = own
    return [o if o is not None else frozenset() for o in owners]


def _column_names(columns: Any, known: list[str]) -> list[str]:
    if isinstance(columns, str):
        return [columns]
    cols = list(np.asarray(columns).tolist()) if not isinstance(columns, list) else columns
    if cols and all(isinstance(c, bool) for c in cols):
        return [k for k, keep in zip(known, cols) if keep]
    return [known[c] if isinstance(c, int) else str(c) for c in cols]


def _width(trans: Any, inputs: list[str]) -> int:
    try:
        return len(trans.get_feature_names_out(inputs))
    except Exception:
        raise ExplanationUnavailable(f"{type(trans).__name__} does not say which features it "
                                     "makes (get_feature_names_out)") from None


def _by_name(trans: Any, inputs: list[str]) -> Owners:
    """A per-column transformer's outputs by their names: the input itself, ``input_...``
    (one-hot categories, spline bases, bins) or ``missingindicator_input``."""
    try:
        names = [str(n) for n in trans.get_feature_names_out(inputs)]
    except Exception:
        names = None
    owners: Owners = []
    for name in names or []:
        bare = name.removeprefix("missingindicator_")
        matches = [c for c in inputs if bare == c or bare.startswith(c + "_")]
        longest = max(matches, key=len, default=None)
        if longest is None or sum(len(m) == len(longest) for m in matches) > 1:
            owners = []
            break
        owners.append(frozenset([longest]))
    if names is None or not owners:
        raise ExplanationUnavailable(f"the features {type(trans).__name__} makes from "
                                     f"{len(inputs)} inputs cannot be traced back to one input "
                                     "each")
    return owners


def check_owners(pre: Any, frame: pd.DataFrame, owners: Owners) -> None:
    """Change one input at a time on reference rows: only the features it owns may move."""
    base = _dense(pre.transform(frame))
    n = len(frame)
    if n < 2:
        return
    for col in frame.columns:
        moved = np.zeros(base.shape[1], dtype=bool)
        for shift in (1, max(n // 2, 1)):
            other = frame.copy()
            other[col] = np.roll(frame[col].to_numpy(), shift)
            changed = _dense(pre.transform(other))
            moved |= ~np.isclose(changed, base, rtol=0, atol=0, equal_nan=True).all(axis=0)
        strays = [j for j in np.flatnonzero(moved) if col not in owners[j]]
        if strays:
            raise ExplanationUnavailable(f"changing input {col!r} moves features the "
                                         "preprocessing does not attribute to it, so its "
                                         "contributions cannot be separated exactly")


def _dense(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=np.float64)


def group_matrix(owners: Owners, inputs: list[str]) -> np.ndarray:
    """Features × inputs, 1 where the feature belongs to the input: ``phi @ G`` sums a row's
    feature contributions into input contributions. A feature of several inputs (a polynomial
    cross term) cannot be split exactly and is refused."""
    mixed = [j for j, own in enumerate(owners) if len(own) > 1]
    if mixed:
        first = sorted(owners[mixed[0]])
        raise ExplanationUnavailable(
            f"{len(mixed)} features combine several inputs (the first mixes "
            f"{', '.join(repr(c) for c in first[:4])}), such as polynomial cross terms: their "
            "contribution cannot be split between the inputs exactly")
    index = {c: i for i, c in enumerate(inputs)}
    groups = np.zeros((len(owners), len(inputs)))
    for j, own in enumerate(owners):
        for c in own:
            groups[j, index[c]] = 1.0
    return groups
