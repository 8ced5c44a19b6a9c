"""Encoding a ScoreResult for the native API: JSON and CSV."""
from __future__ import annotations

from typing import Any, Sequence

from ..types import ScoreResult
from ..types.explanation import per_row, reason_count
from .csv_codec import encode_csv
from .scored_output import explanation_columns, row_problems


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
    if result.explanation is not None:
        out["explanations"] = explanations_json(result)
        out["explained"] = result.explanation.about()
    if result.prediction_ids is not None:
        out["prediction_ids"] = result.prediction_ids
    if request_id:
        out["request_id"] = request_id
    return out


def explanations_json(result: ScoreResult) -> list[dict[str, Any] | None]:
    """Each input row's explanation (None where the row was not scored)."""
    assert result.explanation is not None
    k = reason_count(result.explain, len(result.explanation.columns))
    return per_row(result.explanation, result.positions.tolist(), result.n_rows, k)


def result_to_csv(result: ScoreResult) -> str:
    """One line per input row: prediction, a probability per class, the row's reasons when
    asked (and every input's contribution for ``explain=all``), and the row's error."""
    classes = result.classes if result.probabilities is not None else None
    header = ["row", "prediction"] + [f"probability_{c}" for c in classes or ()] + ["error"]
    rows = _csv_rows(result, classes)
    if result.explanation is not None:
        names, columns = explanation_columns(result)
        header = header[:-1] + names + ["error"]
        rows = [row[:-1] + [c[i] for c in columns] + row[-1:] for i, row in enumerate(rows)]
    if result.prediction_ids is not None:  # outcome tracking: each row's id for its outcome later
        header.append("prediction_id")
        for row, pid in zip(rows, result.prediction_ids):
            row.append(pid or "")
    return encode_csv(header, rows)


def _csv_rows(result: ScoreResult, classes: list[Any] | None) -> list[list[Any]]:
    problems = row_problems((e.row, e.column, e.message) for e in result.errors
                            if e.row is not None)
    rows = []
    for i, pred in enumerate(result.predictions):
        probs: Sequence[float | None] = (result.probabilities[i] if result.probabilities else None) or \
            [None] * len(classes or ())
        rows.append([i, pred, *probs, problems.get(i, "")] if classes else
                    [i, pred, problems.get(i, "")])
    return rows
