"""Encoding a ScoreResult for the native API: JSON and CSV."""
from __future__ import annotations

from typing import Any, Sequence

from ..types import ScoreResult
from .csv_codec import encode_csv
from .scored_output import row_problems


def result_to_json(result: ScoreResult, request_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"model": result.model, "version": result.version,
                           "predictions": result.predictions}
    if result.probabilities is not None:
        out["probabilities"] = result.probabilities
    if result.classes is not None:
        out["classes"] = result.classes
    if result.errors:
        out["errors"] = [e.as_dict() for e in result.errors]
    if result.warnings:
        out["warnings"] = [w.as_dict() for w in result.warnings]
    if result.prediction_ids is not None:
        out["prediction_ids"] = result.prediction_ids
    if request_id:
        out["request_id"] = request_id
    return out


def result_to_csv(result: ScoreResult) -> str:
    """One line per input row: prediction, a probability per class, and the row's error."""
    classes = result.classes if result.probabilities is not None else None
    header = ["row", "prediction"] + [f"probability_{c}" for c in classes or ()] + ["error"]
    ids = result.prediction_ids
    problems = row_problems((e.row, e.column, e.message) for e in result.errors
                            if e.row is not None)
    rows = []
    for i, pred in enumerate(result.predictions):
        probs: Sequence[float | None] = (result.probabilities[i] if result.probabilities else None) or \
            [None] * len(classes or ())
        rows.append([i, pred, *probs, problems.get(i, "")] if classes else
                    [i, pred, problems.get(i, "")])
    if ids is not None:  # outcome tracking: each row's id for recording its outcome later
        header.append("prediction_id")
        for row, pid in zip(rows, ids):
            row.append(pid or "")
    return encode_csv(header, rows)
