"""OData v4 for Power BI, Excel's "From OData Feed" and other BI tools: entity sets over the
registry, query options translated to SQL, and the CSDL ``$metadata`` document.

Each entity set is a SELECT whose columns are its properties, in order; ``$filter`` (parsed by
odata-query, so no hand-written parser and no SQL injection), ``$orderby``, ``$top``, ``$skip``,
``$count`` and ``$select`` are applied to it as SQL, and pages are cut server-side with an absolute
``@odata.nextLink``.

Property names are CSDL simple identifiers: names that come from a model (its columns, its classes,
its own name) go through :func:`identifiers`, one rule documented in docs/http-api.md, and the
original is kept in a ``Core.Description`` annotation.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Iterable, Sequence
from urllib.parse import urlencode
from xml.sax.saxutils import quoteattr

from odata_query import exceptions as odata_errors
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.sqlalchemy.core import AstToSqlAlchemyCoreVisitor
from sqlalchemy import Select, false, func, select, true
from sqlalchemy.exc import DataError

from ..errors import MalformedRequest

NAMESPACE = "ScoreBridge"
PAGE_SIZE = 1000
MAX_OFFSET = 2**53 - 1   # $top and $skip: any row count a client can write exactly
CORE = "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml"


# -- names: CSDL simple identifiers ------------------------------------------------------------
# OData CSDL 4.01 §"Simple Identifier": 1 to 128 characters; the first `_` or a letter (L*) or letter
# number (Nl); the rest `_` or L*, Nl, decimal digits (Nd), marks (Mn, Mc), connector punctuation
# (Pc) and format characters (Cf).

MAX_IDENTIFIER = 128
_FIRST = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"})
_REST = _FIRST | {"Nd", "Mn", "Mc", "Pc", "Cf"}


def _allowed(char: str, first: bool) -> bool:
    return char == "_" or unicodedata.category(char) in (_FIRST if first else _REST)


def is_identifier(name: str) -> bool:
    """Whether ``name`` is a CSDL simple identifier, as strict OData clients check it."""
    return 0 < len(name) <= MAX_IDENTIFIER and all(_allowed(c, i == 0) for i, c in enumerate(name))


def to_identifier(text: str) -> str:
    """``text`` made an identifier: each character an identifier cannot hold becomes ``_``, a
    ``_`` goes in front of a first character that cannot start one, and the whole is cut to 128
    characters. A valid identifier comes back unchanged."""
    name = "".join(c if _allowed(c, False) else "_" for c in text)
    if not name or not _allowed(name[0], True):
        name = "_" + name
    return name[:MAX_IDENTIFIER]


def free_identifier(base: str, taken: set[str]) -> str:
    """``base``, or if it is taken (``taken`` holds lower-cased names) ``base_2``, ``base_3``…
    the first that is free, cut so that it stays within 128 characters; added to ``taken``."""
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        suffix = f"_{n}"
        candidate = base[:MAX_IDENTIFIER - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


def identifiers(sources: Sequence[str], reserved: Iterable[str] = ()) -> list[str]:
    """The property name of each of ``sources`` (a model's column names): the feed's own
    ``reserved`` names come first, then every source that is already an identifier keeps its name,
    then the others get :func:`to_identifier`'s; a name equal, ignoring case, to one taken before
    gets the first free suffix (:func:`free_identifier`). Case is ignored because Power BI's model
    (and Excel's Data Model) holds no two columns that differ only by case."""
    taken = {r.lower() for r in reserved}
    names: list[str | None] = [None] * len(sources)
    for i, source in enumerate(sources):
        if is_identifier(source) and source.lower() not in taken:
            names[i] = free_identifier(source, taken)
    return [name if name is not None else free_identifier(to_identifier(source), taken)
            for name, source in zip(names, sources)]


# -- entity sets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prop:
    name: str
    edm: str
    nullable: bool = True
    source: str | None = None   # the model's name for it (a column), when it has one


@dataclass(frozen=True)
class EntitySet:
    name: str
    type_name: str
    key: tuple[str, ...]
    props: tuple[Prop, ...]
    query: Callable[[], Select]   # one column per property, in props order (labels free)
    default_order: tuple[str, ...]
    description: str | None = None
    model_prop: str | None = None   # the property naming each row's model (per-model access)
    model: str | None = None        # the one model whose rows a per-model set holds

    def shown_to(self, only: Collection[str] | None) -> bool:
        """Whether a caller who may see only the models ``only`` (None: every model) sees this
        set: one model's set if it is theirs, a set whose rows name their model (the rows are
        cut to theirs), and no other set."""
        if only is None:
            return True
        return self.model in only if self.model is not None else self.model_prop is not None

    def prop(self, name: str) -> Prop:
        for p in self.props:
            if p.name == name:
                return p
        hint = next((f" (the column {name[:60]!r} is the property {p.name!r})"
                     for p in self.props if p.source == name), "")
        listed = ", ".join(p.name for p in self.props)
        raise MalformedRequest(f"{self.name} has no property {name[:60]!r}{hint}; properties: "
                               + (listed if len(listed) <= 600 else listed[:600] + "…"))


@dataclass
class Options:
    select: list[str] | None
    filter: str | None
    orderby: list[tuple[str, bool]]
    top: int | None
    skip: int
    count: bool


def parse_options(args: dict[str, str], entity: EntitySet, *, top: int | None = None,
                  skip: int = 0, count: bool = False) -> Options:
    """The query options of ``args`` for ``entity``; ``$top``, ``$skip`` and ``$count`` come
    already checked (they are declared parameters of the HTTP route)."""
    known = {"$select", "$filter", "$orderby", "$top", "$skip", "$count", "$format", "api_key",
             "$skiptoken"}
    unknown = [k for k in args if k.startswith("$") and k not in known]
    if unknown:
        raise MalformedRequest(f"unsupported query option(s): {', '.join(unknown)[:100]}; "
                               "supported: $select, $filter, $orderby, $top, $skip, $count")
    if args.get("$format", "json").split(";")[0] not in ("json", "application/json"):
        raise MalformedRequest("only $format=json is supported")
    select_ = None
    if args.get("$select"):
        select_ = [entity.prop(s.strip()).name for s in args["$select"].split(",") if s.strip()]
    orderby = []
    for part in (args.get("$orderby") or "").split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise MalformedRequest(f"$orderby: expected 'Property [asc|desc]', got {part[:60]!r}")
        orderby.append((entity.prop(words[0]).name, len(words) == 2 and words[1].lower() == "desc"))
    return Options(select=select_, filter=args.get("$filter") or None, orderby=orderby,
                   top=top, skip=skip, count=count)


class _Lexer(ODataLexer):
    """odata-query's lexer with identifiers as CSDL has them: odata-query's own takes ASCII letters
    first and no marks, so ``$filter`` could not name a property such as ``Ümsatz``. Anything
    wider than CSDL it lets through is simply an unknown property."""

    tokens = ODataLexer.tokens

    @_(r"[^\W\d](?:\.?(?:\w|[^\x00-\x7f\s])){0,127}")  # type: ignore[name-defined]  # noqa: F821
    def ODATA_IDENTIFIER(self, t):
        return super().ODATA_IDENTIFIER(t)


class _Columns:
    """The entity set's columns by property name, for odata-query (it reads ``.c[name]``)."""

    def __init__(self, columns: dict[str, Any]) -> None:
        self.c = columns


def _columns(entity: EntitySet, subquery: Any) -> dict[str, Any]:
    # by position: SQL labels need not be the property names (PostgreSQL cuts identifiers at 63
    # bytes, and a name taken from a model's column can be 128 characters of any script)
    return dict(zip((p.name for p in entity.props), subquery.c))


def where_clause(text: str, columns: dict[str, Any]) -> Any:
    """``$filter`` as a SQL expression over the entity set's columns."""
    try:
        ast = ODataParser().parse(_Lexer().tokenize(text))
        return AstToSqlAlchemyCoreVisitor(_Columns(columns)).visit(ast)  # type: ignore[arg-type]
    except odata_errors.InvalidFieldException as exc:
        raise MalformedRequest(f"$filter names an unknown property: {str(exc)[:80]}") from None
    except (odata_errors.ODataException, NotImplementedError, TypeError, ValueError,
            KeyError, AttributeError) as exc:
        raise MalformedRequest(f"$filter could not be understood ({type(exc).__name__}: "
                               f"{str(exc)[:120]})") from None


def _rows_of(entity: EntitySet, columns: dict[str, Any], only: Collection[str]) -> Any:
    """The condition keeping the rows of the models ``only`` (none of a set that names none)."""
    if entity.model is not None:
        return true() if entity.model in only else false()
    if entity.model_prop is not None:
        return columns[entity.model_prop].in_(sorted(only))
    return false()


def page(session: Any, entity: EntitySet, opts: Options, page_size: int = PAGE_SIZE,
         only: Collection[str] | None = None) -> tuple[list[dict[str, Any]], int | None, bool]:
    """(rows, total count when asked, whether more rows follow); with ``only``, just the rows of
    those models (a caller's per-model access), before any ``$filter``, count or paging."""
    sub = entity.query().subquery()
    columns = _columns(entity, sub)
    query = select(sub)
    if only is not None:
        query = query.where(_rows_of(entity, columns, only))
    if opts.filter:
        query = query.where(where_clause(opts.filter, columns))
    order = opts.orderby or [(k, False) for k in entity.default_order]
    wanted = opts.top if opts.top is not None else None
    size = page_size if wanted is None else min(wanted, page_size)
    try:
        total = session.scalar(select(func.count()).select_from(query.subquery())) \
            if opts.count else None
        query = query.order_by(*[columns[n].desc() if desc else columns[n].asc()
                                 for n, desc in order])
        rows = session.execute(query.offset(opts.skip).limit(size + 1)).all()
    except (OverflowError, DataError):
        # a literal of the filter the database cannot hold (SQLite's and PostgreSQL's integers
        # stop at 2**63)
        raise MalformedRequest("$filter holds a number too large for the database") from None
    more = len(rows) > size and (wanted is None or wanted > size)
    where = {p.name: (i, p.edm) for i, p in enumerate(entity.props)}  # rows are in props order
    names = opts.select or list(where)
    out = [{n: _json_value(r[where[n][0]], where[n][1]) for n in names} for r in rows[:size]]
    return out, total, more


def _json_value(value: Any, edm: str) -> Any:
    if value is None:
        return None
    if edm == "Edm.DateTimeOffset" and isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if edm == "Edm.Boolean":
        return bool(value)
    if edm == "Edm.String" and not isinstance(value, str):
        return str(value)
    return value


def next_link(base: str, entity: EntitySet, args: dict[str, str], opts: Options,
              returned: int) -> str:
    params = {k: v for k, v in args.items() if k not in ("$skip", "$top")}
    params["$skip"] = str(opts.skip + returned)
    if opts.top is not None:
        params["$top"] = str(opts.top - returned)
    return f"{base}/odata/{entity.name}?{urlencode(params)}"


def _xml_text(text: str) -> str:
    """``text`` as an XML attribute: characters XML 1.0 cannot hold at all (most C0 controls,
    lone surrogates, U+FFFE/U+FFFF) become U+FFFD, the rest is escaped."""
    return quoteattr("".join(
        c if c in "\t\n\r" or "\x20" <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd"
        or c >= "\U00010000" else "\ufffd" for c in text))


def _description(text: str | None) -> str:
    return f'<Annotation Term="Core.Description" String={_xml_text(text)}/>' if text else ""


def _property_xml(p: Prop, key: tuple[str, ...]) -> str:
    nullable = "" if p.nullable and p.name not in key else ' Nullable="false"'
    head = f"<Property Name={quoteattr(p.name)} Type={quoteattr(p.edm)}{nullable}"
    if p.source is None or p.source == p.name:
        return head + "/>"
    return head + ">" + _description(p.source) + "</Property>"


def _entity_type_xml(e: EntitySet) -> str:
    keys = "".join(f"<PropertyRef Name={quoteattr(k)}/>" for k in e.key)
    props = "".join(_property_xml(p, e.key) for p in e.props)
    return f"<EntityType Name={quoteattr(e.type_name)}><Key>{keys}</Key>{props}</EntityType>"


def _entity_set_xml(e: EntitySet) -> str:
    head = f"<EntitySet Name={quoteattr(e.name)} EntityType={quoteattr(NAMESPACE + '.' + e.type_name)}"
    return head + (f">{_description(e.description)}</EntitySet>" if e.description else "/>")


def metadata_xml(entities: list[EntitySet]) -> str:
    """The CSDL document (EDMX 4.0) describing every entity set; a property named from a model's
    column carries the column's own name as ``Core.Description``."""
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">'
            f'<edmx:Reference Uri="{CORE}">'
            '<edmx:Include Namespace="Org.OData.Core.V1" Alias="Core"/></edmx:Reference>'
            '<edmx:DataServices>'
            f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{NAMESPACE}">'
            + "".join(_entity_type_xml(e) for e in entities)
            + '<EntityContainer Name="Container">'
            + "".join(_entity_set_xml(e) for e in entities)
            + '</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>')
