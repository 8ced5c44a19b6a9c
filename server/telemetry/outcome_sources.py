"""Outcome sources: where a model's outcomes are read from on a schedule, as declared in its
monitoring document (``outcomes.sources``), and how they may be shown.

Two kinds: ``sql`` (a SELECT run through a SQLAlchemy URL, SQLite or PostgreSQL, read-only, with
``:since`` bound to the latest outcome time read so far) and ``files`` (every CSV file matching a
glob, each read once). The declarations are typed models, so the HTTP API (which also builds its
OpenAPI document from them), the local CLI and the runner check them alike. A URL's password is
stored but never shown: :func:`mask_url` is what answers, events and logs carry.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import Forbidden, InvalidInput
from ..registry.service import MONITORING_STATE
from ..types import FieldError

MASK = "***"
DIALECTS = ("sqlite", "postgresql")  # the ones whose read-only mode the runner can enforce
MAX_SOURCES = 20
_SELECT = re.compile(r"^\s*(select|with)\b", re.I)
_SECRET_QUERY_KEYS = re.compile(r"pass|secret|token|key", re.I)


def parse_url(text: str) -> URL:
    """A SQLAlchemy URL of a dialect the runner can keep read-only; plain ``postgresql://``
    means the psycopg (3) driver, the one ScoreBridge ships."""
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ValueError("must be a SQLAlchemy database URL such as "
                         "'postgresql://user:password@host/db' or 'sqlite:////data/crm.db'"
                         ) from None
    if url.get_backend_name() not in DIALECTS:
        raise ValueError("must be a sqlite or postgresql URL (the ones read-only use is "
                         "enforced for)")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError("must name a SQLite database file (sqlite:////path/to/file.db)")
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def mask_url(text: str) -> str:
    """The URL with its password (and any secret-looking query value) replaced by ``***``."""
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        return re.sub(r"//[^@/]*@", f"//{MASK}@", text)
    hidden = "masked0secret"
    if url.query:
        url = url.set(query={k: (hidden if _SECRET_QUERY_KEYS.search(k) else v)
                             for k, v in url.query.items()})
    return url.render_as_string(hide_password=True).replace(hidden, MASK)


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$", description=(
        "how listings and events name the source (default: its kind and a digest of where it "
        "reads); its last-run state is kept under this name"))
    every_minutes: int = Field(60, strict=True, ge=1, le=44640,
                               description="how often it is read, in minutes")
    enabled: bool = Field(True, strict=True, description="false: declared but not read")


class SqlSource(_Source):
    """Rows of a SELECT: columns ``prediction_id`` or ``key`` (or the model's key column),
    ``actual`` and ``time``; ``:since`` in the query is bound to the latest ``time`` read."""

    kind: Literal["sql"]
    url: str = Field(min_length=1, max_length=2048, description=(
        "SQLAlchemy URL, sqlite or postgresql (used read-only; the password is never shown)"))
    query: str = Field(min_length=1, max_length=20_000, description=(
        "one SELECT; ':since' is bound to the latest outcome time read so far"))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_url(value)
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        if not _SELECT.match(value):
            raise ValueError("must be a SELECT (or WITH ... SELECT)")
        if ";" in value.strip().rstrip(";"):
            raise ValueError("must be one statement (no ';' inside)")
        return value

    def where(self) -> str:
        return mask_url(self.url)


class FileSource(_Source):
    """CSV files (header ``prediction_id`` or ``key`` or the model's key column, ``actual``,
    ``time``), each read once; a file that changes (size or modification time) is read again."""

    kind: Literal["files"]
    glob: str = Field(min_length=2, max_length=1024, description=(
        "absolute path pattern under SCOREBRIDGE_JOB_ROOTS, e.g. /data/outcomes/*.csv"))

    @field_validator("glob")
    @classmethod
    def _glob(cls, value: str) -> str:
        if not value.startswith("/") or "\x00" in value:
            raise ValueError("must be an absolute path pattern such as /data/outcomes/*.csv")
        return value

    def where(self) -> str:
        return self.glob


OutcomeSource = Annotated[SqlSource | FileSource, Field(discriminator="kind")]
_SOURCES: TypeAdapter[list[SqlSource | FileSource]] = TypeAdapter(
    list[Annotated[SqlSource | FileSource, Field(discriminator="kind")]])


def default_name(source: SqlSource | FileSource) -> str:
    """A name from what the source reads (the URL without its password: a new password keeps
    the state), so an unnamed source keeps its state for as long as it reads the same."""
    what = f"{source.where()}\n{source.query}" if isinstance(source, SqlSource) else source.where()
    return f"{source.kind}-{hashlib.sha256(what.encode()).hexdigest()[:8]}"


def _field_error(error: Any) -> str:
    parts = list(error["loc"])
    if len(parts) > 1 and parts[1] in ("sql", "files"):  # the kind's tag pydantic adds
        del parts[1]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"outcomes.sources{loc}: {message}"


def parse_sources(data: Any) -> list[SqlSource | FileSource]:
    """Declared sources, checked (a problem naming each wrong field, never its value) and named
    (unique names)."""
    try:
        sources = _SOURCES.validate_python(data)
    except ValidationError as exc:
        messages = [_field_error(e) for e in exc.errors(include_url=False, include_input=False)]
        raise InvalidInput(messages[0] + (f" (and {len(messages) - 1} more)"
                                          if len(messages) > 1 else ""),
                           errors=[FieldError(m) for m in messages[:20]]) from None
    if len(sources) > MAX_SOURCES:
        raise InvalidInput(f"outcomes.sources: at most {MAX_SOURCES} sources per model")
    seen: set[str] = set()
    for i, source in enumerate(sources):
        source.name = source.name or default_name(source)
        if source.name in seen:
            raise InvalidInput(f"outcomes.sources[{i}].name: {source.name!r} names two sources")
        seen.add(source.name)
    return sources


def stored_sources(monitoring: dict[str, Any]) -> list[SqlSource | FileSource]:
    """The model's declared sources as stored (checked when they were declared)."""
    raw = (monitoring.get("outcomes") or {}).get("sources") or []
    return parse_sources(raw)


def shown_source(source: dict[str, Any]) -> dict[str, Any]:
    return {**source, "url": mask_url(source["url"])} if "url" in source else dict(source)


def public_settings(monitoring: dict[str, Any]) -> dict[str, Any]:
    """The monitoring settings as answers and events show them: no run state, no password."""
    out = {k: v for k, v in monitoring.items() if k != MONITORING_STATE}
    outcomes = out.get("outcomes")
    if isinstance(outcomes, dict) and outcomes.get("sources"):
        out["outcomes"] = {**outcomes, "sources": [shown_source(s)
                                                   for s in outcomes["sources"]]}
    return out


def under_roots(path: Path, roots: tuple[str, ...]) -> bool:
    target = path.resolve()
    return any(target == r or r in target.parents for r in (Path(x).resolve() for x in roots))


def _unmasked(url: str, stored: list[dict[str, Any]], where: str) -> str:
    """A URL sent back as it was shown (``***`` for the password) means the stored one."""
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return url
    if password != MASK:
        return url
    for old in stored:
        if old.get("url") and mask_url(old["url"]) == mask_url(url):
            return str(old["url"])
    raise InvalidInput(f"{where}.url: '***' stands for a stored password, but no stored "
                       "source has this URL; send the password")


def declared(new: Any, stored: list[dict[str, Any]], *, may_query_sql: bool,
             roots: tuple[str, ...]) -> list[dict[str, Any]]:
    """The sources to store for a settings change: checked and named; a masked password is the
    stored one; a new or changed SQL source needs an admin (it makes the server query a
    database, as a scoring pipeline's SQL source does); a glob must lie under the allowed
    roots (SCOREBRIDGE_JOB_ROOTS)."""
    if isinstance(new, list):
        new = [{**item, "url": _unmasked(item["url"], stored, f"outcomes.sources[{i}]")}
               if isinstance(item, dict) and isinstance(item.get("url"), str) else item
               for i, item in enumerate(new)]
    sources = parse_sources(new)
    known = {(s.get("url"), s.get("query")) for s in stored if s.get("kind") == "sql"}
    for i, source in enumerate(sources):
        if isinstance(source, SqlSource) and not may_query_sql and \
                (source.url, source.query) not in known:
            raise Forbidden(f"outcomes.sources[{i}]: only an admin key may add or change a SQL "
                            "outcome source")
        if isinstance(source, FileSource) and not under_roots(Path(source.glob).parent, roots):
            raise InvalidInput(f"outcomes.sources[{i}].glob: not under an allowed root "
                               "(SCOREBRIDGE_JOB_ROOTS" + (")" if roots else " is empty)"))
    return [s.model_dump() for s in sources]
