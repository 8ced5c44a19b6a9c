"""One scoring call with a loaded model: check and coerce the table, predict, gather row errors.

Everything that scores goes through :func:`score_with` (the scorer, the shadow runner, batch
jobs on Dask), so the rules for bad rows and ``errors="raise"`` are one piece of code.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInput, ModelFailure
from ..types import Explanation, FieldError, RawTable, ScoreOptions, ScoreResult, to_python
from .coerce import coerce
from .runtime import LoadedModel, as_frame, take


def score_with(model: LoadedModel, table: RawTable, options: ScoreOptions) -> ScoreResult:
    """Check, coerce and predict ``table`` with an already loaded model."""
    checked = coerce(table, model.signature)
    if checked.errors and options.errors == "raise":
        raise InvalidInput(_summary(checked.errors, table.n_rows), errors=checked.errors)
    pred = model.predict(checked.columns, proba=options.probabilities)
    errors = list(checked.errors)
    if pred.failures:
        failures = [FieldError(f.message, row=int(checked.rows[f.row]))
                    for f in pred.failures]
        if options.errors == "raise":
            raise ModelFailure(_summary(failures, table.n_rows), errors=failures)
        errors = sorted(errors + failures, key=lambda e: e.row if e.row is not None else -1)
    output = model.signature.output
    explanation = _explained(model, checked, pred) if options.explain is not None else None
    return ScoreResult(model=model.name, version=model.version, labels=_plain(pred.labels),
                       probs=pred.probabilities, positions=checked.rows[pred.ok],
                       classes=list(output.classes) if output.classes is not None else None,
                       errors=errors, warnings=_dedupe(checked.warnings), n_rows=table.n_rows,
                       kind=output.kind, model_failures=len(pred.failures),
                       checked=checked, scored=pred.ok, explanation=explanation,
                       explain=options.explain)


def _explained(model: LoadedModel, checked: Any, pred: Any) -> Explanation:
    """The scored rows' contributions (asked for by ``options.explain``)."""
    explainer = model.explainer()
    frame = as_frame(take(checked.columns, pred.ok) if len(pred.ok) != len(checked.rows)
                     else checked.columns)
    return explainer.explain(frame, pred.labels)


def _plain(labels: np.ndarray) -> np.ndarray:
    """Labels whose ``tolist()`` gives plain Python values (numpy scalars inside an object array
    would not serialise as JSON)."""
    if labels.dtype == object:
        return np.array([to_python(v) for v in labels.tolist()], dtype=object) \
            if any(isinstance(v, np.generic) for v in labels[:1]) else labels
    return labels


def _summary(errors: list[FieldError], n_rows: int) -> str:
    bad = len({e.row for e in errors if e.row is not None})
    first = errors[0]
    where = f"row {first.row}" if first.row is not None else "input"
    col = f", column {first.column!r}" if first.column else ""
    return (f"{bad} of {n_rows} rows could not be scored; first problem at {where}{col}: "
            f"{first.message}. Send options.errors=\"row\" to score the valid rows anyway")


def _dedupe(items: list[FieldError]) -> list[FieldError]:
    seen = set()
    out = []
    for item in items:
        key = (item.row, item.column, item.message)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
