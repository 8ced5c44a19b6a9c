"""The OData v4 feed at /odata/: Power BI's built-in OData connector (and Excel's) reads the model
catalogue, versions, the audit trail and traffic, and refreshes in the service without a gateway
(Basic with the key as password, or the Web API key credential: ``api_key`` in the query)."""
from __future__ import annotations

from typing import Any, Collection

from flask import Blueprint, Response, request
from pydantic import Field

from .. import metrics
from ..codecs.odata import MAX_OFFSET, EntitySet, metadata_xml, next_link, page, parse_options
from ..codecs.odata_feeds import ENTITY_SETS, model_sets, outcome_quality_set
from ..errors import NotFound, ScoreBridgeError
from ..types import Signature
from .auth import requires, visible_models
from .declare import Parameters
from .excel import public_base
from .fields import Flag, whole
from .http import json_response, problem, services
from .openapi import operation, problem_response

bp = Blueprint("odata", __name__, url_prefix="/odata")
HEADERS = {"OData-Version": "4.0"}
JSON = "application/json;odata.metadata=minimal"


def entity_sets(only: Collection[str] | None = None) -> list[EntitySet]:
    """The fixed sets and live quality (computed when read), then the column dictionary and per
    deployed model its logged predictions, its latest published scored table and every
    published job's rows. Models go in the order they were created: that order settles which of
    two models keeps a set name both would make. With ``only`` (a caller's per-model access),
    just the sets that caller sees (:meth:`EntitySet.shown_to`); the names are made from every
    model all the same, so a set has one name whoever reads it."""
    svc = services()
    models = sorted(svc.registry.list_models(), key=lambda m: (m.created_at, m.name))
    every = ENTITY_SETS + [outcome_quality_set(svc.quality_windows)] + model_sets(
        [(m.name, Signature.from_dict(m.production.signature) if m.production else None)
         for m in models])
    return [e for e in every if e.shown_to(only)]


@bp.errorhandler(ScoreBridgeError)
def odata_error(exc: ScoreBridgeError) -> Response:
    """Problem documents that OData clients can read too (they look for ``error.message``)."""
    metrics.ERRORS.labels(metrics.error_kind(exc.status, exc.slug)).inc()
    resp = problem(exc.status, exc.title, exc.detail, type=exc.type, errors=exc.errors,
                   headers={**exc.headers, **HEADERS},
                   error={"code": exc.slug, "message": exc.detail})
    return resp


def _feed(payload: dict[str, Any]) -> Response:
    resp = json_response(payload, headers=HEADERS)
    resp.content_type = JSON
    return resp


@bp.get("/")
@requires("read")
@operation("OData service document: the entity sets", tags=["odata"],
           responses={"200": {"description": "Service document", "content": {
               "application/json": {"schema": {"type": "object"}}}}})
def service_document() -> Response:
    base = public_base()
    return _feed({"@odata.context": f"{base}/odata/$metadata",
                  "value": [{"name": e.name, "kind": "EntitySet", "url": e.name}
                            for e in entity_sets(visible_models())]})


@bp.get("/$metadata")
@requires("read")
@operation("OData metadata (CSDL XML)", tags=["odata"],
           responses={"200": {"description": "EDMX 4.0", "content": {
               "application/xml": {"schema": {"type": "string"}}}}})
def metadata() -> Response:
    return Response(metadata_xml(entity_sets(visible_models())), mimetype="application/xml",
                    headers=HEADERS)


class EntitySetPath(Parameters):
    entity_set: str = Field(max_length=200, description="a set named in the service document")


class EntitySetQuery(Parameters):
    select: str | None = Field(None, alias="$select", max_length=10_000,
                               description="properties, comma-separated")
    filter: str | None = Field(None, alias="$filter", max_length=10_000,
                               description="an OData filter expression")
    orderby: str | None = Field(None, alias="$orderby", max_length=10_000,
                                description="'Property [asc|desc]', comma-separated")
    top: whole(0, MAX_OFFSET, "at most this many entities, over as many pages as "  # type: ignore[valid-type]
               "it takes") | None = Field(None, alias="$top")
    skip: whole(0, MAX_OFFSET) = Field(0, alias="$skip")  # type: ignore[valid-type]
    count: Flag = Field(False, alias="$count", description="include @odata.count")


@bp.get("/<entity_set>")
@requires("read")
@operation(
    "An entity set, with $select, $filter, $orderby, $top, $skip and $count", tags=["odata"],
    path=EntitySetPath, query=EntitySetQuery,
    responses={"200": {"description": "A page of entities", "content": {
        "application/json": {"schema": {"type": "object"}}}},
        "404": problem_response("No such entity set")})
def entity_set(entity_set: str, query: EntitySetQuery) -> Response:
    """Pages hold at most 1,000 entities; ``@odata.nextLink`` (absolute) fetches the next, and
    a ``$top`` larger than a page is served over as many pages as it takes."""
    only = visible_models()
    by_name = {e.name: e for e in entity_sets(only)}
    entity = by_name.get(entity_set)
    if entity is None:
        raise NotFound(f"no entity set {entity_set[:60]!r}; sets: " + ", ".join(by_name))
    args = request.args.to_dict()
    opts = parse_options(args, entity, top=query.top, skip=query.skip, count=query.count)
    base = public_base()
    with services().registry.reading() as session:
        rows, total, more = page(session, entity, opts, services().settings.odata_page_size,
                                 only=only)
    payload: dict[str, Any] = {"@odata.context": f"{base}/odata/$metadata#{entity.name}"}
    if total is not None:
        payload["@odata.count"] = total
    payload["value"] = rows
    if more:
        payload["@odata.nextLink"] = next_link(base, entity, args, opts, len(rows))
    return _feed(payload)
