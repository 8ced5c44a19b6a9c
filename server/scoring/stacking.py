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
    """Each stacked table's own result from the joint one: (index, result, (start, rows))."""
    offset = 0
    for i, aligned, warnings in parts:
        yield i, _slice(whole, offset, aligned.n_rows, warnings), (offset, aligned.n_rows)
        offset += aligned.n_rows


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


def _slice(result: ScoreResult, start: int, n: int, warnings: list[FieldError]) -> ScoreResult:
    """Rows ``start .. start+n`` of ``result`` as a result of their own (rows renumbered)."""
    def inside(e: FieldError) -> bool:
        return e.row is not None and start <= e.row < start + n

    def shift(items: list[FieldError]) -> list[FieldError]:
        return [FieldError(e.message, e.row - start, e.column)  # type: ignore[operator]
                for e in items if inside(e)]

    lo, hi = np.searchsorted(result.positions, [start, start + n])
    return ScoreResult(
        model=result.model, version=result.version, labels=result.labels[lo:hi],
        probs=result.probs[lo:hi] if result.probs is not None else None,
        positions=result.positions[lo:hi] - start, classes=result.classes,
        errors=shift(result.errors),
        warnings=warnings + [w for w in result.warnings if w.row is None] + shift(result.warnings),
        n_rows=n, kind=result.kind)  # model failures are counted on the whole call
