"""Check and convert raw input against a signature: the one place where input rules live.

The rules, for every client alike: numbers may arrive as text ("42"); text that is not a number in a
numeric column is an error naming row, column, expected type and value; missing values and unknown
categories pass (with a warning) when the model was shown at registration to handle them, and are
errors otherwise; missing columns are an error; extra columns are ignored and reported.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import InvalidInput, short
from ..types import MISSING, Column, FieldError, RawTable, Signature

MAX_WARNINGS = 100
# up to this many rows the per-cell rules alone are cheaper than bulk conversion (measured:
# one row 19 against 44 µs for the demo model's six columns; level at 16 rows)
CELL_BY_CELL_ROWS = 8
_NULL_WORDS = {"", "na", "n/a", "nan", "null", "none", "#n/a"}
EXCEL_ERRORS = {"#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#NAME?", "#NULL!", "#SPILL!",
                "#CALC!", "#GETTING_DATA", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!",
                "#UNKNOWN!", "#ERROR!"}  # the last: Google Sheets
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass
class Coerced:
    """The rows that passed, as typed columns in signature order, and what was wrong.

    The columns are plain arrays: the compiled runtime takes them as they are, and the DataFrame
    scikit-learn needs is built only when asked for (:attr:`frame`)."""

    columns: dict[str, np.ndarray]
    rows: np.ndarray
    n_rows: int
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)

    @cached_property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns, copy=False)  # the dict is in signature order


class _Cell(Exception):
    """A bad cell: raised inside converters, turned into a FieldError by the column loop."""


_MISSING_VALUE = object()


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _to_float(v: Any) -> Any:
    t = type(v)
    if t is float or isinstance(v, np.floating):
        if v != v:
            return _MISSING_VALUE
        if math.isinf(v):
            raise _Cell(f"expected a finite number, got {short(v)}")
        return float(v)
    if t is bool or isinstance(v, np.bool_):
        raise _Cell(f"expected a number, got {short(v)}")
    if t is int or isinstance(v, np.integer):
        if abs(v) > 2**63:
            raise _Cell("expected a number within range, got an integer too large")
        return float(v)
    if v is None or v is MISSING:
        return _MISSING_VALUE
    if t is str:
        s = v.strip()
        if s.lower() in _NULL_WORDS:
            return _MISSING_VALUE
        try:
            f = float(s)
        except ValueError:
            raise _Cell(f"expected a number, got {short(v)}") from None
        if not math.isfinite(f):
            raise _Cell(f"expected a finite number, got {short(v)}")
        return f
    raise _Cell(f"expected a number, got {type(v).__name__}")


def _to_int(v: Any) -> Any:
    f = _to_float(v)
    if f is not _MISSING_VALUE:
        if not float(f).is_integer():
            raise _Cell(f"expected a whole number, got {short(v)}")
        if abs(f) > 2**53:
            raise _Cell("expected a whole number within ±2^53, got a larger one")
    return f


def _to_bool(v: Any) -> Any:
    if v is None or v is MISSING:
        return _MISSING_VALUE
    if type(v) is bool or isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (int, float, np.number)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        if s in _NULL_WORDS:
            return _MISSING_VALUE
    raise _Cell(f"expected true or false, got {short(v)}")


def _to_str(v: Any) -> Any:
    if v is None or v is MISSING:
        return _MISSING_VALUE
    t = type(v)
    if t is str:
        return _MISSING_VALUE if v == "" else v
    if t is float or isinstance(v, np.floating):
        if v != v:
            return _MISSING_VALUE
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if t is bool or isinstance(v, np.bool_):
        return "true" if v else "false"
    if t is int or isinstance(v, np.integer):
        return str(int(v))
    raise _Cell(f"expected text, got {type(v).__name__}")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "number": _to_float, "integer": _to_int, "boolean": _to_bool, "string": _to_str,
}


class _Report:
    """Collects errors (all of them) and warnings (capped, with a count of the rest)."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.bad: set[int] = set()
        self.warnings: list[FieldError] = []
        self.dropped_warnings = 0

    def error(self, row: int, column: str | None, message: str) -> None:
        self.errors.append(FieldError(message, row=row, column=column))
        self.bad.add(row)

    def warn(self, row: int | None, column: str | None, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(FieldError(message, row=row, column=column))
        else:
            self.dropped_warnings += 1


@lru_cache(maxsize=1024)
def _match_categories(col: Column) -> tuple[frozenset[Any], dict[str, Any]]:
    """(the known categories, each by its folded spelling); once per column, not per call
    (callers only read them)."""
    known = frozenset(col.categories or ())
    folded: dict[str, Any] = {}
    for c in col.categories or ():
        folded.setdefault(str(c).strip().lower(), c)
    return known, folded


def _coerce_cells(col: Column, cells: Iterable[tuple[int, Any]], report: _Report,
                  skip: set[int]) -> list[Any]:
    """The per-cell rules for (row, value) pairs: every error and warning comes from here."""
    convert = _CONVERTERS[col.type]
    out: list[Any] = []
    known, folded = _match_categories(col) if col.is_categorical else (frozenset(), {})
    for i, v in cells:
        if i in skip:  # already refused as a whole row by the decoder
            out.append(_MISSING_VALUE)
            continue
        if type(v) is str and v in EXCEL_ERRORS:
            report.error(i, col.name, f"the cell holds the Excel error {v}")
            out.append(_MISSING_VALUE)
            continue
        try:
            c = convert(v)
        except _Cell as cell:
            report.error(i, col.name, str(cell))
            out.append(_MISSING_VALUE)
            continue
        if c is _MISSING_VALUE:
            if v is MISSING:
                report.error(i, col.name, "value missing from this row")
            elif not col.accepts_missing:
                report.error(i, col.name, "missing value: the model needs a value here")
            else:
                report.warn(i, col.name, "missing value (handled by the model)")
        elif known and c not in known:
            alias = folded.get(str(c).strip().lower())
            if alias is not None:
                report.warn(i, col.name, f"{short(c)} read as {short(alias)}")
                c = alias
            elif col.accepts_unknown is False:
                report.error(i, col.name, f"unknown category {short(c)}; expected one of: "
                             + _list(col.categories))
            else:
                report.warn(i, col.name, f"unknown category {short(c)} (the model treats it as "
                            "unseen); known: " + _list(col.categories))
        out.append(c)
    return out


def _coerce_column(col: Column, values: Any, report: _Report, skip: set[int]) -> np.ndarray:
    """One column, typed: clean cells converted in bulk, the rest (and only the rest) cell by
    cell. Bulk conversion accepts only cells the per-cell rules would pass unchanged and without
    a warning, so both ways give the same values, errors and warnings."""
    n = len(values)
    if n <= CELL_BY_CELL_ROWS and not _is_arrow(values):
        cells = values.tolist() if isinstance(values, np.ndarray) else list(values)
        return _array(col, _coerce_cells(col, enumerate(cells), report, skip))
    typed: np.ndarray | None = None
    suspect: np.ndarray | None = None
    originals: Callable[[list[int]], list[Any]]
    if _is_arrow(values):
        array = values.combine_chunks() if hasattr(values, "combine_chunks") else values
        typed, suspect, arr = _arrow_bulk(col, array) if n else (None, None, None)
        if arr is None:
            arr = _object_array(array.to_pylist())

        def originals(idx: list[int]) -> list[Any]:
            import pyarrow as pa

            return array.take(pa.array(idx, type=pa.int64())).to_pylist()
    else:
        arr = values if isinstance(values, np.ndarray) and values.dtype == object else \
            _object_array(values)

        def originals(idx: list[int]) -> list[Any]:
            return arr[idx].tolist()

    if typed is None and n and col.type in ("number", "integer"):
        typed, suspect = _bulk_numbers(arr, col.type == "integer")
        if typed is not None and col.is_categorical:
            assert suspect is not None  # _bulk_numbers gives both or neither
            try:
                suspect |= ~np.isin(typed, np.asarray(col.categories, dtype=np.float64))
            except (TypeError, ValueError):
                typed = None
    elif typed is None and n and col.type == "string":
        typed, suspect = _bulk_strings(arr, col)
    if typed is None:
        cells = _coerce_cells(col, enumerate(arr.tolist()), report, skip)
        return _array(col, cells)
    assert suspect is not None
    if skip:
        suspect[list(skip)] = True
    where = np.flatnonzero(suspect).tolist()
    if where:
        cells = _coerce_cells(col, zip(where, originals(where)), report, skip)
        fixed = _array(col, cells)
        if col.type in ("number", "integer"):
            typed = typed.astype(np.float64)
        typed[where] = fixed
    if col.type == "integer" and typed.dtype != np.int64 and not np.isnan(typed).any():
        typed = typed.astype(np.int64)
    return typed


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


def _arrow_bulk(col: Column, array: Any) -> tuple[np.ndarray | None, np.ndarray | None,
                                                  np.ndarray | None]:
    """Bulk conversion of an Arrow column (text from a CSV file, typed from Parquet) in Arrow's
    own C++ code: numbers parsed there, text dictionary-encoded so each distinct value becomes
    one Python string. Returns (typed, suspect, object view) — or Nones where the object path
    must decide."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if col.type in ("number", "integer") and not col.is_categorical:
        if text:
            try:  # empty cells are missing; any other text that is no number: the object path
                array_n = pc.cast(pc.if_else(pc.equal(array, ""), pa.scalar(None, kind), array),
                                  pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None, None, None
        elif pa.types.is_floating(kind) or pa.types.is_integer(kind):
            array_n = array.cast(pa.float64())
        else:
            return None, None, None
        typed = array_n.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
        suspect = ~np.isfinite(typed)
        if col.type == "integer":
            with np.errstate(invalid="ignore"):
                suspect |= (np.abs(typed) > 2**53) | (typed != np.floor(typed))
        typed[suspect] = 0.0
        return typed, suspect, None
    if col.type == "string" and text:
        encoded = array.dictionary_encode()
        words = np.empty(len(encoded.dictionary) + 1, dtype=object)
        words[:-1] = encoded.dictionary.to_pylist()
        words[-1] = None
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        return None, None, words[codes]  # the object path checks the (shared) strings
    return None, None, None


def _object_array(values: Any) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _bulk_numbers(arr: np.ndarray, integer: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Plain numbers and numeric text converted at once; cells that might not be (text that is
    not a number, missing values, booleans, huge or non-finite values) are flagged as suspect."""
    kinds = set(map(type, arr))
    if not kinds <= {str, float, int}:
        return None, None
    typed = np.zeros(len(arr), dtype=np.float64)
    try:  # Python's float() on each cell, exactly as the per-cell rule reads them
        typed[:] = arr.astype(np.float64)
        suspect = ~np.isfinite(typed)
    except (OverflowError, ValueError, TypeError):
        if kinds == {str}:  # usually a few empty cells; else find the text that is no number
            suspect = arr == ""
        else:
            suspect = np.fromiter((type(v) is str and v == "" for v in arr), bool, len(arr))
        try:
            typed[~suspect] = arr[~suspect].astype(np.float64)
        except (OverflowError, ValueError, TypeError):
            suspect = ~np.isfinite(np.asarray(pd.to_numeric(arr, errors="coerce"),
                                              dtype=np.float64))
            try:
                typed[~suspect] = arr[~suspect].astype(np.float64)
            except (OverflowError, ValueError, TypeError):
                return None, None
        suspect |= ~np.isfinite(typed)
    if integer:
        with np.errstate(invalid="ignore"):
            suspect |= (np.abs(typed) > 2**53) | (typed != np.floor(typed))
    elif kinds & {int}:
        with np.errstate(invalid="ignore"):
            suspect |= np.abs(typed) > 2**63
    typed[suspect] = 0.0
    return typed, suspect


def _bulk_strings(arr: np.ndarray, col: Column) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Text cells that are known categories (or any text, for a free-text column) pass at once;
    empty cells, Excel errors, unknown categories and non-text cells are suspect. The checks run
    on the distinct values, of which a category column has a handful."""
    try:
        uniques = set(arr.tolist())
    except TypeError:  # an unhashable cell (a list, an object): the per-cell rules report it
        return None, None
    if not any(type(u) is str for u in uniques):
        return None, None
    known = set(col.categories) if col.categories is not None else None  # is_categorical
    bad = {u for u in uniques if type(u) is not str or u == "" or u in EXCEL_ERRORS
           or (known is not None and u not in known)}
    suspect = pd.Series(arr, copy=False).isin(bad).to_numpy(dtype=bool, copy=True) if bad else \
        np.zeros(len(arr), dtype=bool)
    return arr.copy(), suspect


def _list(values: Any, limit: int = 12) -> str:
    values = list(values or ())
    text = ", ".join(str(v) for v in values[:limit])
    return text + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _array(col: Column, values: list[Any]) -> np.ndarray:
    if col.type in ("number", "integer"):
        arr = np.array([np.nan if v is _MISSING_VALUE else v for v in values], dtype=np.float64)
        if col.type == "integer" and not np.isnan(arr).any():
            return arr.astype(np.int64)
        return arr
    filled = [np.nan if v is _MISSING_VALUE else v for v in values]
    if col.type == "boolean" and not any(v is _MISSING_VALUE for v in values):
        return np.array(filled, dtype=bool)
    arr = np.empty(len(filled), dtype=object)
    arr[:] = filled
    return arr


def _bind_names(table: RawTable, signature: Signature, report: _Report) -> dict[str, list[Any]]:
    """Map the table's columns onto the signature by name (forgiving case and spacing)."""
    assert table.names is not None
    if table.names == signature.names:  # already aligned: nothing to match
        return dict(zip(table.names, table.columns))
    if table.n_rows == 0 and not table.names:
        # no rows and so no columns (an empty records list: Power Query's schema pass)
        return {name: [] for name in signature.names}
    given = dict(zip(table.names, table.columns))
    by_norm: dict[str, str] = {}
    for name in table.names:
        by_norm.setdefault(_normalise(name), name)
    bound: dict[str, list[Any]] = {}
    missing = []
    for col in signature.inputs:
        if col.name in given:
            bound[col.name] = given.pop(col.name)
            continue
        alt = by_norm.get(_normalise(col.name))
        if alt is not None and alt in given:
            bound[col.name] = given.pop(alt)
            report.warn(None, col.name, f"column {short(alt)} matched to {short(col.name)}")
        else:
            missing.append(col.name)
    if missing:
        raise InvalidInput(
            f"missing column(s): {', '.join(missing)}; the model needs: {', '.join(signature.names)}",
            errors=[FieldError("missing column", column=m) for m in missing])
    for extra in given:
        report.warn(None, extra, "not a model input: ignored")
    return bound


def align(table: RawTable, signature: Signature) -> tuple[RawTable, list[FieldError]]:
    """``table`` with exactly the signature's columns, in order (positional rows bound, names
    matched); missing columns raise, extra columns come back as warnings. Tables aligned this way
    can be concatenated and scored in one call."""
    if table.pending_rows is not None:
        table = bind_positional(table, signature)
    report = _Report()
    bound = _bind_names(table, signature, report)
    aligned = RawTable(names=signature.names, columns=[bound[n] for n in signature.names],
                       n_rows=table.n_rows, row_errors=list(table.row_errors))
    return aligned, report.warnings


def concat(tables: list[RawTable], signature: Signature) -> RawTable:
    """Tables stacked into one, in order (row numbers in errors shifted accordingly). Each is
    aligned already, or positional: runs of positional tables are bound in one go, which is what
    makes thousands of one-row spreadsheet calls cheap."""
    names = signature.names
    columns: list[list[Any]] = [[] for _ in names]
    errors: list[FieldError] = []
    offset = 0
    pending: list[Any] = []

    def bind_pending() -> None:
        nonlocal pending
        if pending:
            add(RawTable.from_rows(pending, names, len(names)))
            pending = []

    def add(t: RawTable) -> None:
        nonlocal offset
        for j, col in enumerate(t.columns):
            columns[j].extend(col)
        errors.extend(FieldError(e.message, None if e.row is None else e.row + offset, e.column)
                      for e in t.row_errors)
        offset += t.n_rows

    for t in tables:
        if t.pending_rows is not None:
            pending.extend(t.pending_rows)
        else:
            bind_pending()
            add(t)
    bind_pending()
    return RawTable(names=names, columns=columns, n_rows=offset, row_errors=errors)


def check_width(table: RawTable, signature: Signature) -> None:
    """Positional rows that all have the wrong width are a mistake about the whole input."""
    width = len(signature.inputs)
    widths = {len(r) for r in table.pending_rows or [] if isinstance(r, (list, tuple))}
    if len(widths) == 1 and width not in widths:
        raise InvalidInput(f"expected {width} values per row in signature order "
                           f"({', '.join(signature.names)}), got {widths.pop()}")


def bind_positional(table: RawTable, signature: Signature) -> RawTable:
    """Turn positional rows into columns, checking each row's width against the signature."""
    bound = RawTable.from_rows(table.pending_rows or [], signature.names, len(signature.inputs))
    if bound.row_errors:  # rows of the wrong width: all of one width is a whole-input mistake
        check_width(table, signature)
    return bound


def coerce(table: RawTable, signature: Signature) -> Coerced:
    """Validate and type ``table`` against ``signature``; bad rows are reported, not dropped silently."""
    if table.pending_rows is not None:
        table = bind_positional(table, signature)
    report = _Report()
    for err in table.row_errors:
        report.errors.append(err)
        if err.row is not None:
            report.bad.add(err.row)
    structural = set(report.bad)
    bound = _bind_names(table, signature, report)
    typed = {col.name: _coerce_column(col, bound[col.name], report, structural)
             for col in signature.inputs}
    if report.dropped_warnings:
        report.warnings.append(FieldError(f"{report.dropped_warnings} more warnings not shown"))
    report.errors.sort(key=lambda e: (e.row if e.row is not None else -1))
    if report.bad:
        keep = np.ones(table.n_rows, dtype=bool)
        keep[[r for r in report.bad if 0 <= r < table.n_rows]] = False
        good = np.flatnonzero(keep)
        data = {name: values[good] for name, values in typed.items()}
    else:
        good = np.arange(table.n_rows, dtype=np.int64)
        data = typed
    return Coerced(columns=data, rows=good, n_rows=table.n_rows, errors=report.errors,
                   warnings=report.warnings)
