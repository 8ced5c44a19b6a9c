"""Several requests' tables stacked into one model call, and the joint result split back.

A model call costs about the same for one row as for hundreds, so micro-batches and multi-call
spreadsheet requests share one; each table keeps its own row numbers, errors and warnings.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import ScoreBridgeError
from ..types import FieldError, RawTable, ScoreResult, Signature
from .coerce import align, check_width


def split_parts(whole: ScoreResult, parts: list[tuple[int, RawTable, list[FieldError]]],
           ) -> Iterator[tuple[int, ScoreResult, tuple[int, int]]]:
    """Each stacked table's own result from the joint one: (index, result, (start, rows)).

    Row errors and warnings are sorted into their tables in one pass and the tables' bounds
    found in one search, so splitting 5,000 one-row spreadsheet calls costs 5,000 small
    results, not 5,000 scans of every error."""
    sizes = [aligned.n_rows for _, aligned, _ in parts]
    starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    bounds = np.searchsorted(whole.positions, starts).tolist()
    errors = _by_part(whole.errors, starts)
    warnings = _by_part(whole.warnings, starts)
    general = [w for w in whole.warnings if w.row is None]
    for k, (i, _, own) in enumerate(parts):
        start, n = int(starts[k]), sizes[k]
        lo, hi = bounds[k], bounds[k + 1]
        yield i, ScoreResult(
            model=whole.model, version=whole.version, labels=whole.labels[lo:hi],
            probs=whole.probs[lo:hi] if whole.probs is not None else None,
            positions=whole.positions[lo:hi] - start, classes=whole.classes,
            errors=_shifted(errors.get(k), start),
            warnings=own + general + _shifted(warnings.get(k), start),
            n_rows=n, kind=whole.kind, explain=whole.explain,
            explanation=whole.explanation.take(lo, hi) if whole.explanation is not None
            else None), (start, n)  # model failures count on the whole call


def _by_part(items: list[FieldError], starts: np.ndarray) -> dict[int, list[FieldError]]:
    """The items with a row inside the stacked tables, by table (in their order)."""
    out: dict[int, list[FieldError]] = {}
    inside = [(j, e.row) for j, e in enumerate(items)
              if e.row is not None and 0 <= e.row < starts[-1]]
    if not inside:
        return out
    # the last table starting at or before the row: empty tables share their start with the next
    owners = np.searchsorted(starts, np.array([row for _, row in inside]), side="right") - 1
    for (j, _), k in zip(inside, owners.tolist()):
        out.setdefault(k, []).append(items[j])
    return out


def _shifted(items: list[FieldError] | None, start: int) -> list[FieldError]:
    return [FieldError(e.message, e.row - start, e.column)  # type: ignore[operator]
            for e in items] if items else []


def aligned_parts(tables: list[RawTable], signature: Signature,
                   ) -> tuple[list[ScoreBridgeError | None],
                              list[tuple[int, RawTable, list[FieldError]]]]:
    """Tables made ready to be stacked: (index, table, warnings) for each that fits the
    signature, and each one's own error where it does not (missing columns, wrong width).
    Positional tables stay pending so :func:`concat` binds them all in one go."""
    failed: list[ScoreBridgeError | None] = [None] * len(tables)
    parts: list[tuple[int, RawTable, list[FieldError]]] = []
    for i, table in enumerate(tables):
        try:
            if table.pending_rows is not None:
                check_width(table, signature)
                parts.append((i, table, []))
                continue
            aligned, warnings = align(table, signature)
        except ScoreBridgeError as exc:
            failed[i] = exc
            continue
        parts.append((i, aligned, warnings))
    return failed, parts
