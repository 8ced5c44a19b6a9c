"""The neutral form every client format is decoded into before scoring.

A codec turns JSON, CSV, Excel or OData input into a :class:`RawTable` of still-untyped values;
the scoring core checks and coerces it against the model's signature. Keeping the values raw here
means one set of coercion rules (and one set of error messages) serves every client. It lives at
the bottom because both the codecs and the scoring core use it and neither may import the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Sequence

from .field_error import FieldError


class _Missing:
    """A cell that was not given at all (absent key in a record), as opposed to an explicit null."""

    _instance = None

    def __new__(cls) -> "_Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class RawTable:
    """Columns of raw values, all of length ``n_rows``.

    ``names`` is None for positional input (values in signature order, kept in ``pending_rows``
    until the scoring core knows the signature's width). ``row_errors`` holds
    structural problems the decoder found (a row with the wrong number of fields, a record that is
    not an object); such rows are not scored.
    """

    names: list[str] | None
    columns: list[list[Any]]
    n_rows: int
    row_errors: list[FieldError] = field(default_factory=list)
    pending_rows: Sequence[Any] | None = None

    @classmethod
    def positional(cls, rows: Sequence[Any]) -> "RawTable":
        """Rows of values in signature order; split into columns once the signature is known."""
        return cls(names=None, columns=[], n_rows=len(rows), pending_rows=rows)

    @classmethod
    def from_rows(cls, rows: Sequence[Any], names: list[str] | None,
                  width: int | None = None) -> "RawTable":
        """Row-major input; rows of the wrong width become row errors."""
        expected = len(names) if names is not None else width
        errors: list[FieldError] = []
        if expected is None:
            expected = len(rows[0]) if rows and isinstance(rows[0], (list, tuple)) else 0
        if rows and set(map(type, rows)) <= {list, tuple} and set(map(len, rows)) == {expected}:
            # the usual case, checked and transposed in C (a Python loop costs ~15 ms per
            # 10,000 rows)
            return cls(names=names, columns=[list(col) for col in zip(*rows)],
                       n_rows=len(rows))
        columns: list[list[Any]] = [[] for _ in range(expected)]
        for i, row in enumerate(rows):
            if not isinstance(row, (list, tuple)):
                errors.append(FieldError(f"expected a list of {expected} values, got "
                                         f"{type(row).__name__}", row=i))
                row = ()
            elif len(row) != expected:
                errors.append(FieldError(f"expected {expected} values, got {len(row)}", row=i))
                row = ()
            if not row:
                row = (MISSING,) * expected
            for j in range(expected):
                columns[j].append(row[j])
        return cls(names=names, columns=columns, n_rows=len(rows), row_errors=errors)

    @classmethod
    def from_records(cls, records: Sequence[Any]) -> "RawTable":
        """A list of objects; keys missing from a record are MISSING for that row."""
        same = _same_keys(records)
        if same is not None:  # the usual case (Power Query's records), transposed in C
            rows = map(itemgetter(*same), records) if len(same) > 1 else \
                ((rec[same[0]],) for rec in records)
            return cls(names=[str(k) for k in same], columns=[list(c) for c in zip(*rows)],
                       n_rows=len(records))
        names: dict[str, int] = {}
        errors: list[FieldError] = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                errors.append(FieldError(f"expected an object, got {type(rec).__name__}", row=i))
                continue
            for key in rec:
                if key not in names:
                    names[key] = len(names)
        columns = [[rec.get(k, MISSING) if isinstance(rec, dict) else MISSING for rec in records]
                   for k in names]
        return cls(names=[str(k) for k in names], columns=columns, n_rows=len(records),
                   row_errors=errors)


def _same_keys(records: Sequence[Any]) -> tuple[Any, ...] | None:
    """The keys, in order, when every record is an object with the same (non-empty) keys."""
    if not records or type(records[0]) is not dict or not records[0]:
        return None
    keys = records[0].keys()
    if all(type(rec) is dict and rec.keys() == keys for rec in records):
        return tuple(keys)
    return None
