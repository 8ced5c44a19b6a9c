"""CSV in and out for scoring: a header row, one record per line."""
from __future__ import annotations

import csv
import io
from typing import Any, Iterable

from ..errors import MalformedRequest
from ..types import MISSING, FieldError, RawTable
from .safe_cells import safe_cell

csv.field_size_limit(1 << 20)


def decode_csv(body: bytes) -> RawTable:
    """A CSV body with a header row; empty cells are missing values."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the CSV body is not valid UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise MalformedRequest("the CSV body is empty; send a header row first") from None
    except csv.Error as exc:
        raise MalformedRequest(f"the CSV header cannot be read ({exc})") from None
    names = [h.strip() for h in header]
    if not any(names) or len(set(names)) != len(names):
        raise MalformedRequest("the CSV header must name every column once")
    rows: list[list[Any]] = []
    errors: list[FieldError] = []
    try:
        for i, row in enumerate(reader):
            if len(row) != len(names):
                errors.append(FieldError(f"expected {len(names)} fields, got {len(row)}", row=i))
                row = [MISSING] * len(names)
            rows.append([MISSING if v is MISSING else (v if v != "" else None) for v in row])
    except csv.Error as exc:
        raise MalformedRequest(f"the CSV body is malformed at line {reader.line_num} "
                               f"({exc})") from None
    table = RawTable.from_rows(rows, names)
    table.row_errors.extend(errors)
    return table


def encode_csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    """CSV text with every cell made safe for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; also quotes stray CRs
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()
