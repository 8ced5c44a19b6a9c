"""Reading an outcome source as a stream of :class:`Outcome` values, with flat memory.

Files: the CSV files matching the source's glob (only those under the allowed roots), each read
line by line through the same decoder as uploads. SQL: the source's SELECT on its own engine, in a
read-only transaction (PostgreSQL ``SET TRANSACTION READ ONLY``, SQLite ``PRAGMA query_only``),
fetched in chunks from a server-side cursor, ``:since`` bound to the latest outcome time read so
far. What goes wrong is a :class:`SourceError` whose message carries no secret.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import DateTime, bindparam, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..codecs.outcomes import iter_csv_outcomes, outcome_of
from ..errors import ScoreBridgeError
from ..types import Outcome
from .outcome_sources import FileSource, SqlSource, parse_url, under_roots

CHUNK_ROWS = 5000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # ``:since`` before anything was read


class SourceError(Exception):
    """A source that could not be read (the reason is safe to record and show)."""


@dataclass(frozen=True)
class Fingerprint:
    """What says a file changed since it was read: its size and modification time."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> "Fingerprint":
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime_ns)

    def stored(self) -> dict[str, int]:
        return {"size": self.size, "mtime_ns": self.mtime_ns}

    def matches(self, stored: Any) -> bool:
        return isinstance(stored, dict) and stored.get("size") == self.size and \
            stored.get("mtime_ns") == self.mtime_ns


def matching_files(source: FileSource, roots: tuple[str, ...]) -> list[Path]:
    """The files the glob matches now, in name order; a match that resolves outside the
    allowed roots (a symbolic link) is left out."""
    if not under_roots(Path(source.glob).parent, roots):
        raise SourceError("the glob is not under an allowed root (SCOREBRIDGE_JOB_ROOTS)")
    found = (Path(p) for p in sorted(glob.glob(source.glob)))
    return [p for p in found if p.is_file() and under_roots(p, roots)]


def file_outcomes(path: Path, key_column: str | None) -> Iterator[Outcome]:
    """A CSV file's outcomes, one line at a time (the file is closed when the stream ends)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            yield from iter_csv_outcomes(fh, key_column)
    except ScoreBridgeError as exc:  # a header without the needed columns, a broken line
        raise SourceError(exc.detail) from None
    except UnicodeDecodeError as exc:
        raise SourceError(f"not UTF-8 text (byte {exc.start} of a block)") from None
    except OSError as exc:
        raise SourceError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None


def _secret_free(exc: BaseException, url: Any) -> str:
    """A database error's first line, without the URL's password."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines() or [""]
    message = f"{type(orig).__name__}: {lines[0][:300]}"
    if url.password:
        message = message.replace(str(url.password), "***")
    return message


def _read_only(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    else:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def sql_outcomes(source: SqlSource, since: datetime | None,
                 key_column: str | None) -> Iterator[Outcome]:
    """The query's rows as outcomes, ``CHUNK_ROWS`` fetched at a time."""
    url = parse_url(source.url)
    if url.get_backend_name() == "sqlite" and not Path(str(url.database)).is_file():
        raise SourceError("no SQLite database file at the URL's path")
    statement = text(source.query)
    params: dict[str, Any] = {}
    try:
        statement = statement.bindparams(bindparam("since", type_=DateTime(timezone=True)))
        params["since"] = since or EPOCH
    except ArgumentError:  # the query does not use :since: every run reads all it selects
        pass
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _read_only(conn)
            result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS) \
                .execute(statement, params)
            row = 0
            for part in result.mappings().partitions():
                for record in part:
                    yield outcome_of(row, dict(record), key_column)
                    row += 1
            conn.rollback()
    except SQLAlchemyError as exc:
        raise SourceError(_secret_free(exc, url)) from None
    finally:
        engine.dispose()
