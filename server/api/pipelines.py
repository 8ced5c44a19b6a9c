"""Scheduled scoring pipelines over HTTP."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from pydantic import ConfigDict, Field

from ..errors import NotFound
from .auth import actor, current_key, require_model, requires, visible_models
from .declare import Inputs, Parameters
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("pipelines", __name__, url_prefix="/api/v1/pipelines")
_NOT_FOUND = {"404": problem_response("No such pipeline")}


class PipelineCreate(Inputs):
    model_config = ConfigDict(json_schema_extra={"example": {
        "name": "nightly-churn", "model": "churn", "schedule": "0 6 * * *",
        "source": {"kind": "file", "glob": "/data/in/customers-*.csv"},
        "sink": {"kind": "table"}}})

    name: str = Field(max_length=64, description="lower-case letters, digits, '-' and '_'")
    model: str = Field(max_length=64)
    alias: str = Field("production", max_length=32)
    schedule: str = Field(max_length=200, description="cron, e.g. '0 6 * * *'")
    source: dict[str, Any] = Field(description=(
        '{"kind": "file", "glob": "/data/in/*.csv"} or '
        '{"kind": "sql", "url": "postgresql+psycopg://...", "query": "SELECT ..."}'))
    sink: dict[str, Any] = Field(description=(
        '{"kind": "table"} (published for OData) or '
        '{"kind": "file", "path": "/data/out/scored.csv", "format": "csv"}'))


class PipelinePath(Parameters):
    pipeline: str = Field(max_length=64, description="the pipeline's name")


def _visible(pipeline: str) -> Any:
    """The pipeline, if its model is one the caller may use; another model's answers 404 as
    if it did not exist (as a job of another model does)."""
    info = services().schedules.get(pipeline)
    allowed = visible_models()
    if allowed is not None and info.model not in allowed:
        raise NotFound(f"no pipeline named {pipeline[:40]!r}")   # as for an unknown name
    return info


@bp.post("")
@requires("deploy")
@operation(
    "Create a scheduled scoring pipeline (source, model alias, cron schedule, sink)",
    tags=["jobs"], body=PipelineCreate,
    responses={"201": json_content("Pipeline", "Created"),
               "403": problem_response("A SQL source needs an admin key"),
               "409": problem_response("The name is taken"),
               "422": problem_response("Invalid schedule, source or sink")})
def create(body: PipelineCreate) -> Response:
    info = services().create_schedule(
        body.name, require_model(body.model), body.schedule, body.source, body.sink, actor=actor(),
        alias=body.alias, may_query_sql="admin" in current_key().grants)
    return json_response(info.public(), 201, {"Location": f"/api/v1/pipelines/{info.name}"})


@bp.get("")
@requires("read")
@operation("Scheduled pipelines", tags=["jobs"], responses={"200": json_content("PipelineList")})
def list_pipelines() -> Response:
    """The pipelines of the models the caller may use."""
    allowed = visible_models()
    return json_response({"pipelines": [p.public() for p in services().schedules.list()
                                        if allowed is None or p.model in allowed]})


@bp.get("/<pipeline>")
@requires("read")
@operation("One pipeline", tags=["jobs"], path=PipelinePath, responses={"200": json_content("Pipeline"),
                                                     **_NOT_FOUND})
def get_pipeline(pipeline: str) -> Response:
    return json_response(_visible(pipeline).public())


@bp.post("/<pipeline>/run")
@requires("deploy")
@operation("Run a pipeline now", tags=["jobs"], path=PipelinePath,
           responses={"202": json_content("Pipeline", "Started"), **_NOT_FOUND})
def run_now(pipeline: str) -> Response:
    return json_response(services().run_schedule(_visible(pipeline).name).public(), 202)


@bp.delete("/<pipeline>")
@requires("deploy")
@operation("Delete a pipeline", tags=["jobs"], path=PipelinePath,
           responses={"204": {"description": "Deleted"}, **_NOT_FOUND})
def delete(pipeline: str) -> Response:
    services().delete_schedule(_visible(pipeline).name)
    return Response(status=204)
