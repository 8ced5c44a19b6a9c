"""What the compiled forms need to know about a fitted pipeline: its steps, its classes, which
inputs reach the trees unchanged and the split thresholds to guard in float32.

Shared by compiling (:mod:`.compiler`) and loading (:mod:`.stored`), so it has a module of its own.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ...types import Signature
from ..runtime import final_estimator

EXACT_STEPS = ("OneHotEncoder", "OrdinalEncoder")


def exact_in_float32(estimator: Any) -> bool:
    """Whether numbers reach the model unchanged (passthrough or exact integer encodings), so
    the float32 graph compares the same values with the same thresholds as scikit-learn."""
    for step in pre_steps(estimator):
        if step in (None, "passthrough"):
            continue
        if not hasattr(step, "transformers_"):
            return False
        for _, transformer, _ in step.transformers_:
            if _identity(transformer) or transformer == "drop":
                continue
            if type(transformer).__name__ not in EXACT_STEPS:
                return False
    return True


def _identity(transformer: Any) -> bool:
    """'passthrough', which a fitted ColumnTransformer holds as an identity FunctionTransformer."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return type(transformer).__name__ == "FunctionTransformer" and \
        getattr(transformer, "func", 0) is None and \
        getattr(transformer, "inverse_func", 0) is None


def split_guards(estimator: Any, signature: Signature) -> dict[str, np.ndarray]:
    """Per numeric input feeding a tree model unchanged: its split thresholds as scikit-learn
    holds them (float64). The compiled graph holds them in float32 and compares float32 inputs;
    scikit-learn compares float32 inputs (forests, single trees, gradient boosting) or float64
    ones (histogram gradient boosting). A value on which the two comparisons could disagree is
    sent to scikit-learn (see ``OnnxRunner.feed``)."""
    positions = _passthrough_positions(estimator, signature)
    encoded = _encoded_positions(estimator)
    guards = {}
    for feature, thresholds in matrix_guards(estimator).items():
        name = positions.get(feature)
        if name is None:
            if feature in encoded:
                continue  # 0/1 or category codes: exact in float32
            return {"": np.empty(0)}  # a threshold on a derived feature: cannot be guarded
        guards[name] = thresholds
    return guards


def matrix_guards(estimator: Any) -> dict[int, np.ndarray]:
    """Per feature of the model's matrix: its split thresholds as scikit-learn holds them, for
    a float32 graph fed by a float64 plan (``PlannedOnnxRunner``); none for other models."""
    parts: dict[int, list[np.ndarray]] = {}
    for features, thresholds in _splits(final_estimator(estimator)):
        for feature in np.unique(features):
            parts.setdefault(int(feature), []).append(thresholds[features == feature])
    return {j: np.unique(np.concatenate(p)).astype(np.float64) for j, p in parts.items()}


def _splits(final: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(feature index, threshold) arrays of every numeric split of a fitted tree model."""
    if hasattr(final, "_predictors"):  # HistGradientBoosting
        for trees in final._predictors:
            for tree in trees:
                nodes = tree.nodes
                numeric = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
                yield nodes["feature_idx"][numeric], nodes["num_threshold"][numeric]
        return
    trees = [final] if hasattr(final, "tree_") else \
        list(np.ravel(getattr(final, "estimators_", [])))
    for tree in trees:
        inner = tree.tree_
        split = inner.feature >= 0
        yield inner.feature[split], inner.threshold[split]


def pre_steps(estimator: Any) -> list[Any]:
    """The steps before the model (none for a bare estimator)."""
    return [step for _, step in estimator.steps[:-1]] if hasattr(estimator, "steps") else []


def _outputs_of(estimator: Any, keep: Any) -> dict[int, tuple[int, Any]]:
    """Model feature index -> (position within its transformer's columns, those columns), for
    the transformers of a single fitted ColumnTransformer that ``keep`` accepts."""
    steps = pre_steps(estimator)
    if len(steps) != 1 or not hasattr(steps[0], "output_indices_"):
        return {}
    ct = steps[0]
    return {index: (offset, columns)
            for name, transformer, columns in ct.transformers_
            if keep(transformer) and name in ct.output_indices_
            for offset, index in enumerate(range(ct.output_indices_[name].start,
                                                 ct.output_indices_[name].stop))}


def _encoded_positions(estimator: Any) -> set[int]:
    """Model feature indices produced by exact encoders (one-hot, ordinal)."""
    return set(_outputs_of(estimator, lambda t: type(t).__name__ in EXACT_STEPS))


def _passthrough_positions(estimator: Any, signature: Signature) -> dict[int, str]:
    """Model feature index -> input column, for inputs passed through unchanged."""
    if not pre_steps(estimator):
        return {i: c.name for i, c in enumerate(signature.inputs)}
    out: dict[int, str] = {}
    for index, (offset, columns) in _outputs_of(estimator, _identity).items():
        column = np.atleast_1d(columns)[offset]
        out[index] = signature.inputs[column].name if isinstance(column, (int, np.integer)) \
            else str(column)
    return out


def classes_of(estimator: Any, signature: Signature) -> np.ndarray | None:
    return np.asarray(estimator.classes_) if signature.output.kind == "classification" \
        else None


def wide_inputs(estimator: Any) -> bool:
    """Whether scikit-learn compares the inputs in float64 (histogram gradient boosting) rather
    than float32 (its other tree models)."""
    return hasattr(final_estimator(estimator), "_predictors")
