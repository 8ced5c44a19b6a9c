"""Input columns written back as what they hold: numbers as numbers, dates as dates.

CSV input is read as text, so that nothing is lost on the way in (a ``007`` stays ``007``). Written
back to a workbook as text, numbers carry Excel's "number stored as text" mark and ``SUM`` over
them gives 0. So on the way out:

- XLSX, cell by cell: a cell of a column the model reads as a number is a number when it reads as
  one (the model read it so); any other text cell is a number only when it is written the way a
  number is (no leading zero, no ``+``, at most 15 significant digits: Excel keeps no more), and
  a date or date-time when it is an ISO date without a time zone. Everything else stays text
  (and is neutralised against formula injection by the writer).
- Parquet, column by column (a column has one type, and a file written in chunks keeps the first
  chunk's): the columns the model reads as numbers are float64 (a value that is not a number is
  empty there; its row's error names it); the other columns keep the type they came in with, so
  identifiers that look like numbers stay text.
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Mapping

from .safe_cells import NUMBER_PATTERN

NUMERIC = frozenset({"number", "integer"})
_PLAIN_INTEGER = re.compile(r"-?(0|[1-9]\d{0,14})")
_PLAIN_DECIMAL = re.compile(r"-?(0|[1-9]\d*)\.\d+")
_LENIENT_NUMBER = re.compile(NUMBER_PATTERN)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")


def cell_value(text: str, numeric: bool = False) -> Any:
    """``text`` as the number, date or date-time it is written as, else ``text`` itself;
    ``numeric``: the model reads this column as a number (any way of writing one counts)."""
    if numeric and _LENIENT_NUMBER.fullmatch(text.strip()):
        number = float(text)
        if not math.isfinite(number):
            return text  # 1e400: no number a workbook can hold
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if _PLAIN_INTEGER.fullmatch(text):
        return int(text)
    if _PLAIN_DECIMAL.fullmatch(text) and len(text.lstrip("-").replace(".", "").lstrip("0")) <= 15:
        return float(text)
    if len(text) <= 26 and (_ISO_DATE.fullmatch(text) or _ISO_DATETIME.fullmatch(text)):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return text  # 2024-02-30 is text that looks like a date
        if parsed.year < 1900:
            return text  # before Excel's first date
        return parsed.date() if len(text) == 10 else parsed
    return text


def workbook_row(values: Any, numeric: list[bool]) -> list[Any]:
    """One row's cells for a workbook: text cells typed by :func:`cell_value`."""
    return [cell_value(v, n) if isinstance(v, str) and v else v for v, n in zip(values, numeric)]


def numeric_columns(names: list[str], types: Mapping[str, str]) -> list[bool]:
    return [types.get(name) in NUMERIC for name in names]


def typed_numbers(table: Any, types: Mapping[str, str]) -> Any:
    """An Arrow table whose text columns the model reads as numbers are cast to float64 (integer
    columns too: int64 would depend on each chunk's values, and a file has one schema); a value
    that is not a number becomes empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for name, column in zip(table.column_names, table.columns):
        kind = types.get(name)
        if kind in NUMERIC and (pa.types.is_string(column.type)
                                or pa.types.is_large_string(column.type)):
            trimmed = pc.utf8_trim_whitespace(column)
            valid = pc.match_substring_regex(trimmed, NUMBER_PATTERN)
            column = pc.if_else(valid, trimmed, pa.scalar(None, column.type)).cast(pa.float64())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)

