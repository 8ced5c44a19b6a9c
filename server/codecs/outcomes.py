"""Recorded outcomes from the wire: CSV rows or JSON objects into :class:`Outcome` values.

Columns (CSV header or JSON members): ``prediction_id`` or a business key (``key``, or the
model's own key column name), ``actual``, and optionally ``time`` (ISO 8601; without a zone it is
UTC; absent: when received). A row whose time cannot be read is kept with its problem, so it gets
its own answer instead of failing the upload.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from typing import Any, Iterable, Iterator

from ..errors import MalformedRequest
from ..types import Outcome

ID, KEY, ACTUAL, TIME = "prediction_id", "key", "actual", "time"


def parse_time(value: Any) -> tuple[datetime | None, str]:
    """An ISO 8601 time (naive: UTC), or the problem with it; a database row's own date or
    time value (a SQL outcome source) is taken as it is."""
    if value is None or value == "":
        return None, ""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)), ""
    if not isinstance(value, str):
        return None, f"time {str(value)[:40]!r} is not an ISO 8601 text"
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None, f"time {value[:40]!r} is not an ISO 8601 date and time"
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)), ""


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()[:255] or None


def outcome_of(row: int, record: dict[str, Any], key_column: str | None) -> Outcome:
    at, problem = parse_time(record.get(TIME))
    key = record.get(KEY)
    if key is None and key_column:
        key = record.get(key_column)
    pid = record.get(ID)
    if pid is not None and not isinstance(pid, str):
        problem = problem or "prediction_id must be text"
        pid = None
    return Outcome(row=row, actual=record.get(ACTUAL), prediction_id=_text(pid), key=_text(key),
                   time=at, problem=problem)


def outcomes_from_records(records: Iterable[dict[str, Any]],
                          key_column: str | None = None) -> list[Outcome]:
    return [outcome_of(i, r, key_column) for i, r in enumerate(records)]


def _check_header(names: list[str], key_column: str | None) -> None:
    if ACTUAL not in names:
        raise MalformedRequest(f"the outcomes need an {ACTUAL!r} column")
    keys = [n for n in (ID, KEY, key_column) if n and n in names]
    if not keys:
        raise MalformedRequest(f"the outcomes need a {ID!r} or a business key column ("
                               + ", ".join(repr(n) for n in (KEY, key_column) if n) + ")")


def iter_csv_outcomes(lines: Iterable[str], key_column: str | None = None,
                      start: int = 0) -> Iterator[Outcome]:
    """Outcomes from CSV text lines (header first), one at a time: a file of any size streams
    through with flat memory."""
    reader = csv.reader(lines)
    try:
        names = [h.strip() for h in next(reader)]
    except StopIteration:
        raise MalformedRequest("the CSV body is empty; send a header row first") from None
    except csv.Error as exc:
        raise MalformedRequest(f"the CSV header cannot be read ({exc})") from None
    _check_header(names, key_column)
    try:
        for i, values in enumerate(reader, start):
            if len(values) != len(names):
                yield Outcome(row=i, actual=None, problem=f"expected {len(names)} fields, got "
                                                          f"{len(values)}")
                continue
            yield outcome_of(i, {n: (v if v != "" else None) for n, v in zip(names, values)},
                             key_column)
    except csv.Error as exc:
        raise MalformedRequest(f"the CSV body is malformed at line {reader.line_num} "
                               f"({exc})") from None


def outcomes_from_csv(body: bytes, key_column: str | None = None) -> list[Outcome]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the CSV body is not valid UTF-8 (byte {exc.start})") from None
    return list(iter_csv_outcomes(io.StringIO(text, newline=""), key_column))
