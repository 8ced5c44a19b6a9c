"""Spreadsheet ranges in, spreadsheet-shaped answers out: the Excel add-in, xlwings and Google
Sheets all send the same batch of calls, each a 2-D range of cell values.

A range whose first row names the model's columns is read by name (its other columns ignored);
any other range is read by position in signature order.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ..types import RawTable, Signature

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


