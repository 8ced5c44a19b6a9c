"""OData v4 for Power BI, Excel's "From OData Feed" and other BI tools: entity sets over the
registry, query options translated to SQL, and the CSDL ``$metadata`` document.

Each entity set is a SELECT whose columns are labelled with the OData property names; ``$filter``
(parsed by odata-query, so no hand-written parser and no SQL injection), ``$orderby``, ``$top``,
``$skip``, ``$count`` and ``$select`` are applied to it as SQL, and pages are cut server-side with an
absolute ``@odata.nextLink``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlencode
from xml.sax.saxutils import quoteattr

from odata_query import exceptions as odata_errors
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.sqlalchemy.core import AstToSqlAlchemyCoreVisitor
from sqlalchemy import Select, func, select
from sqlalchemy.exc import DataError

from ..errors import MalformedRequest

NAMESPACE = "ScoreBridge"
PAGE_SIZE = 1000
MAX_OFFSET = 2**53 - 1   # $top and $skip: any row count a client can write exactly


@dataclass(frozen=True)
class Prop:
    name: str
    edm: str
    nullable: bool = True


@dataclass(frozen=True)
class EntitySet:
    name: str
    type_name: str
    key: tuple[str, ...]
    props: tuple[Prop, ...]
    query: Callable[[], Select]   # columns labelled with the property names, in props order
    default_order: tuple[str, ...]

    def prop(self, name: str) -> Prop:
        for p in self.props:
            if p.name == name:
                return p
        raise MalformedRequest(f"{self.name} has no property {name[:60]!r}; properties: "
                               + ", ".join(p.name for p in self.props))


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


def where_clause(text: str, subquery: Any) -> Any:
    """``$filter`` as a SQL expression over the entity set's columns."""
    try:
        ast = ODataParser().parse(ODataLexer().tokenize(text))
        return AstToSqlAlchemyCoreVisitor(subquery).visit(ast)
    except odata_errors.InvalidFieldException as exc:
        raise MalformedRequest(f"$filter names an unknown property: {str(exc)[:80]}") from None
    except (odata_errors.ODataException, NotImplementedError, TypeError, ValueError,
            KeyError, AttributeError) as exc:
        raise MalformedRequest(f"$filter could not be understood ({type(exc).__name__}: "
                               f"{str(exc)[:120]})") from None


def page(session: Any, entity: EntitySet, opts: Options,
         page_size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int | None, bool]:
    """(rows, total count when asked, whether more rows follow)."""
    sub = entity.query().subquery()
    query = select(sub)
    if opts.filter:
        query = query.where(where_clause(opts.filter, sub))
    order = opts.orderby or [(k, False) for k in entity.default_order]
    wanted = opts.top if opts.top is not None else None
    size = page_size if wanted is None else min(wanted, page_size)
    try:
        total = session.scalar(select(func.count()).select_from(query.subquery())) \
            if opts.count else None
        query = query.order_by(*[sub.c[n].desc() if desc else sub.c[n].asc()
                                 for n, desc in order])
        rows = session.execute(query.offset(opts.skip).limit(size + 1)).mappings().all()
    except (OverflowError, DataError):
        # a literal of the filter the database cannot hold (SQLite's and PostgreSQL's integers
        # stop at 2**63)
        raise MalformedRequest("$filter holds a number too large for the database") from None
    more = len(rows) > size and (wanted is None or wanted > size)
    names = opts.select or [p.name for p in entity.props]
    types = {p.name: p.edm for p in entity.props}
    out = [{n: _json_value(r[n], types[n]) for n in names} for r in rows[:size]]
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


def metadata_xml(entities: list[EntitySet]) -> str:
    """The CSDL document (EDMX 4.0) describing every entity set."""
    types = []
    for e in entities:
        keys = "".join(f'<PropertyRef Name="{k}"/>' for k in e.key)
        props = "".join(
            f'<Property Name={quoteattr(p.name)} Type="{p.edm}"'
            f'{"" if p.nullable and p.name not in e.key else " Nullable=" + chr(34) + "false" + chr(34)}/>'
            for p in e.props)
        types.append(f'<EntityType Name="{e.type_name}"><Key>{keys}</Key>{props}</EntityType>')
    sets = "".join(f'<EntitySet Name="{e.name}" EntityType="{NAMESPACE}.{e.type_name}"/>'
                   for e in entities)
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">'
            '<edmx:DataServices>'
            f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{NAMESPACE}">'
            + "".join(types)
            + f'<EntityContainer Name="Container">{sets}</EntityContainer>'
            '</Schema></edmx:DataServices></edmx:Edmx>')
