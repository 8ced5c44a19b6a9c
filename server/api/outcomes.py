"""Outcomes over HTTP: record actuals (JSON or CSV), read live quality against the holdout."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request
from pydantic import Field

from ..codecs.outcomes import outcomes_from_csv, outcomes_from_records
from .auth import requires
from .declare import Inputs, Parameters
from .fields import CELL, ModelPath, VersionNumber, whole
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("outcomes", __name__, url_prefix="/api/v1")

MAX_OUTCOMES = 100_000  # per request; the CLI sends larger files in chunks


class OutcomeItem(Inputs):
    prediction_id: str | None = Field(None, max_length=96,
                                      description="the id the scoring response gave the row")
    key: Any = Field(None, description="the business key, instead of a prediction id",
                     json_schema_extra={"anyOf": [{"type": "string"}, {"type": "number"}]})
    actual: Any = Field(None, description="what really happened: a class, or a number",
                        json_schema_extra=CELL)
    time: Any = Field(None, description="when it happened (ISO 8601; default: now)",
                      json_schema_extra={"type": "string", "format": "date-time"})


class OutcomesBody(Inputs):
    outcomes: list[OutcomeItem] = Field(max_length=MAX_OUTCOMES,
                                        description="one object per outcome")


@bp.post("/models/<name>/outcomes")
@requires("score")
@operation(
    "Record actual outcomes for tracked predictions", tags=["monitoring"], path=ModelPath,
    body=OutcomesBody, raw={"text/csv": {"type": "string"}},
    body_limit=lambda: services().settings.max_upload_bytes,
    responses={"200": json_content("OutcomeReport", "One answer per row"),
               "404": problem_response("No such model"),
               "422": problem_response("The model does not track outcomes")})
def record_outcomes(name: str, body: OutcomesBody | None) -> Response:
    """By ``prediction_id`` or business key, with the outcome's ``time``. Each row is answered:
    recorded, replaced (last upload wins), unchanged, unknown or invalid. ``text/csv`` bodies
    take the same columns in a header row."""
    svc = services()
    key = (svc.registry.get_model(name).monitoring.get("outcomes") or {}).get("key")
    if body is None:
        outcomes = outcomes_from_csv(request.get_data(cache=False), key)
    else:
        outcomes = outcomes_from_records([o.model_dump() for o in body.outcomes], key)
    return json_response(svc.record_outcomes(name, outcomes))


class QualityQuery(Parameters):
    version: VersionNumber | None = Field(None, description="one version only")
    since: datetime | None = Field(None, description="predictions made from this time")
    until: datetime | None = Field(None, description="predictions made before this time")
    last: whole(1, 10_000_000, "only the newest N outcomes") = None  # type: ignore[valid-type]
    window_hours: whole(1, 8760, "the length of each time window") = 24  # type: ignore[valid-type]
    segments: bool = Field(True, description="quality per value of each categorical input")


@bp.get("/models/<name>/outcomes/quality")
@requires("read")
@operation(
    "Live quality from recorded outcomes, per version, against the holdout",
    tags=["monitoring"], path=ModelPath, query=QualityQuery,
    responses={"200": json_content("OutcomeQuality"), "404": problem_response("No such model")})
def outcome_quality(name: str, query: QualityQuery) -> Response:
    options: dict[str, Any] = query.model_dump()
    return json_response(services().outcome_quality(name, **options))


class SourceQuery(Parameters):
    source: str | None = Field(None, max_length=48, description="only the source so named")


@bp.get("/models/<name>/outcomes/sources")
@requires("read")
@operation(
    "The model's scheduled outcome sources, each with its last run",
    tags=["monitoring"], path=ModelPath,
    responses={"200": json_content("OutcomeSources"), "404": problem_response("No such model")})
def outcome_sources(name: str) -> Response:
    """Passwords in SQL URLs are masked."""
    return json_response(services().list_outcome_sources(name))


@bp.post("/models/<name>/outcomes/sources/run")
@requires("deploy")
@operation(
    "Read the model's outcome sources now, due or not",
    tags=["monitoring"], path=ModelPath, query=SourceQuery,
    responses={"200": json_content("OutcomeSourceRuns", "What each run did"),
               "404": problem_response("No such model or source")})
def run_outcome_sources(name: str, query: SourceQuery) -> Response:
    """Each enabled source (or the one named) is read and its outcomes recorded; a source
    another worker is running is skipped. A failing source is answered, not raised."""
    return json_response(services().run_outcome_sources(name, query.source))
