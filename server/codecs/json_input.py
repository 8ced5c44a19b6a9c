"""Decoding of JSON scoring requests: our shapes and MLflow's, into a RawTable.

Accepted (exactly one per request): ``rows`` (positional lists in signature order), ``records``
(objects), ``columns`` (an object of equal-length lists), and MLflow's ``dataframe_split``,
``dataframe_records``, ``instances`` and ``inputs``. The request's envelope (``options``, MLflow's
``params``) is declared and checked by the HTTP layer; this codec reads only the table.
"""
from __future__ import annotations

from typing import Any

import orjson

from ..errors import MalformedRequest
from ..types import RawTable
from .table import table_from_columns

SHAPES = ("rows", "records", "columns", "dataframe_split", "dataframe_records", "instances",
          "inputs")


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; NaN, Infinity, over-deep nesting and invalid UTF-8 are refused."""
    if not body:
        raise MalformedRequest("the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).split(":")[0]
        raise MalformedRequest(f"the request body is not valid JSON ({reason}, at byte "
                               f"{exc.pos})") from None


def _list(value: Any, shape: str, of: str = "values") -> list[Any]:
    if not isinstance(value, list):
        raise MalformedRequest(f"'{shape}' must be a list of {of}, got {type(value).__name__}")
    return value


def _columns(value: Any, shape: str) -> RawTable:
    if not isinstance(value, dict):
        raise MalformedRequest(f"'{shape}' must be an object of column name to list of values")
    for name, col in value.items():
        if not isinstance(col, list):
            raise MalformedRequest(f"'{shape}': column {name!r} must be a list of values, got "
                                   f"{type(col).__name__}")
    return table_from_columns(value)


def _rows_or_records(value: Any, shape: str) -> RawTable:
    items = _list(value, shape, "rows or records")
    if items and all(isinstance(i, dict) for i in items):
        return RawTable.from_records(items)
    if items and not any(isinstance(i, (list, dict)) for i in items):
        return RawTable.positional([[i] for i in items])  # one scalar per row (single input)
    return RawTable.positional(items)


def decode_table(body: Any) -> RawTable:
    """The table inside a parsed JSON scoring request."""
    if not isinstance(body, dict):
        raise MalformedRequest("expected a JSON object with one of: " + ", ".join(SHAPES))
    present = [k for k in SHAPES if k in body]
    if len(present) != 1:
        raise MalformedRequest(("the request has more than one input shape: " + ", ".join(present))
                               if present else
                               "the request needs one of: " + ", ".join(SHAPES))
    shape = present[0]
    value = body[shape]
    if shape == "rows":
        return RawTable.positional(_list(value, shape, "lists"))
    if shape in ("records", "dataframe_records"):
        return RawTable.from_records(_list(value, shape, "objects"))
    if shape == "columns":
        return _columns(value, shape)
    if shape == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise MalformedRequest("'dataframe_split' must be an object with 'data' (and "
                                   "'columns')")
        data = _list(value["data"], "dataframe_split.data", "lists")
        names = value.get("columns")
        if names is None:
            return RawTable.positional(data)
        names = _list(names, "dataframe_split.columns", "column names")
        if not all(isinstance(n, str) for n in names):
            raise MalformedRequest("'dataframe_split.columns' must be a list of strings")
        return RawTable.from_rows(data, names)
    if isinstance(value, dict):  # instances / inputs in columnar form
        return _columns(value, shape)
    return _rows_or_records(value, shape)
