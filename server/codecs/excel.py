"""Spreadsheet ranges in, spreadsheet-shaped answers out: the Excel add-in, xlwings and Google
Sheets all send the same batch of calls, each a 2-D range of cell values.

A range whose first row names the model's columns is read by name (its other columns ignored);
any other range is read by position in signature order.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from ..types import RawTable, ScoreResult, Signature

MAX_CALLS = 10_000   # ranges in one batch request


def _norm(value: str) -> str:
    return re.sub(r"[\s_\-]+", "_", value.strip().lower())


@lru_cache(maxsize=256)
def _known(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_norm(n) for n in names)


def is_header(row: list[Any], signature: Signature) -> bool:
    """True when ``row`` is text naming (at least half of its cells as) the model's columns.
    Asked of every call of a batch: a data row is told apart at its first number."""
    cells = []
    for c in row:
        if c is None or c == "":
            continue
        if not isinstance(c, str):
            return False
        cells.append(c)
    if not cells:
        return False
    known = _known(tuple(signature.names))
    return sum(_norm(c) in known for c in cells) * 2 >= len(cells)


def table_from_range(values: list[list[Any]], signature: Signature) -> tuple[RawTable, bool]:
    """The range as a table, and whether its first row was a header."""
    if values and isinstance(values[0], list) and is_header(values[0], signature):
        names = [str(c).strip() if c not in (None, "") else f"(empty column {j + 1})"
                 for j, c in enumerate(values[0])]
        seen: dict[str, int] = {}
        for j, name in enumerate(names):  # duplicate headers: keep the first, rename the rest
            if name in seen:
                names[j] = f"{name} (column {j + 1})"
            seen.setdefault(name, j)
        return RawTable.from_rows(values[1:], names), True
    return RawTable.positional(values), False


def is_single_data_row(values: list[list[Any]], signature: Signature) -> bool:
    """True for a range that is one row of the model's width, neither empty nor a header: a
    call of a filled-down column. Such calls can be scored as the rows of one table and
    answered row by row, the same answers as call by call at a fraction of the cost."""
    if len(values) != 1:
        return False
    row = values[0]
    width = len(signature.inputs)
    return len(row) == width and row.count(None) + row.count("") != width and \
        not is_header(row, signature)


def row_answers(whole: ScoreResult) -> Iterator[tuple[Any, list[float] | None,
                                                       list[dict[str, Any]]]]:
    """Each row of ``whole`` as a one-row call's answer: its prediction (None when not
    scored), its probabilities (None without them) and its errors, numbered as row 0."""
    errors: dict[int, list[dict[str, Any]]] = {}
    for e in whole.errors:
        if e.row is not None and 0 <= e.row < whole.n_rows:
            own = e.as_dict()
            own["row"] = 0
            errors.setdefault(e.row, []).append(own)
    probabilities = whole.probabilities
    for i, prediction in enumerate(whole.predictions):
        yield (prediction, probabilities[i] if probabilities is not None else None,
               errors.get(i, []))
