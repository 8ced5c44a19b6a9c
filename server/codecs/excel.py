"""Spreadsheet ranges in, spreadsheet-shaped answers out: the Excel add-in, xlwings and Google
Sheets all send the same batch of calls, each a 2-D range of cell values.

A range whose first row names the model's columns is read by name (its other columns ignored);
any other range is read by position in signature order.
"""
from __future__ import annotations

import re
from typing import Any

from ..types import RawTable, Signature

MAX_CALLS = 10_000   # ranges in one batch request


def _norm(value: str) -> str:
    return re.sub(r"[\s_\-]+", "_", value.strip().lower())


def is_header(row: list[Any], signature: Signature) -> bool:
    """True when ``row`` is text naming (at least half of its cells as) the model's columns."""
    cells = [c for c in row if c not in (None, "")]
    if not cells or not all(isinstance(c, str) for c in cells):
        return False
    known = {_norm(n) for n in signature.names}
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


