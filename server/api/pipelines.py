"""Scheduled scoring pipelines over HTTP."""
from __future__ import annotations

from flask import Blueprint, Response

from ..errors import MalformedRequest
from ..jobs.schedules import Schedules as Pipelines
from .auth import actor, current_key, requires
from .http import json_body, json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("pipelines", __name__, url_prefix="/api/v1/pipelines")
_NOT_FOUND = {"404": problem_response("No such pipeline")}


def _pipelines() -> Pipelines:
    svc = services()
    return Pipelines(svc.registry, svc.jobs)


@bp.post("")
@requires("deploy")
@operation(
    "Create a scheduled scoring pipeline (source, model alias, cron schedule, sink)",
    tags=["jobs"],
    request_body={"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/PipelineCreate"}}}},
    responses={"201": json_content("Pipeline", "Created"),
               "400": problem_response("Malformed request"),
               "403": problem_response("A SQL source needs an admin key"),
               "409": problem_response("The name is taken"),
               "422": problem_response("Invalid schedule, source or sink")})
def create() -> Response:
    body = json_body()
    if not isinstance(body, dict):
        raise MalformedRequest("send a JSON object")
    unknown = set(body) - {"name", "model", "alias", "schedule", "source", "sink"}
    if unknown:
        raise MalformedRequest(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    info = _pipelines().create(
        str(body.get("name", "")), str(body.get("model", "")), body.get("schedule"),
        body.get("source"), body.get("sink"), actor=actor(),
        alias=str(body.get("alias", "production")),
        may_query_sql="admin" in current_key().grants)
    return json_response(info.public(), 201, {"Location": f"/api/v1/pipelines/{info.name}"})


@bp.get("")
@requires("read")
@operation("Scheduled pipelines", tags=["jobs"], responses={"200": json_content("PipelineList")})
def list_pipelines() -> Response:
    return json_response({"pipelines": [p.public() for p in _pipelines().list()]})


@bp.get("/<name>")
@requires("read")
@operation("One pipeline", tags=["jobs"], responses={"200": json_content("Pipeline"),
                                                     **_NOT_FOUND})
def get_pipeline(name: str) -> Response:
    return json_response(_pipelines().get(name).public())


@bp.post("/<name>/run")
@requires("deploy")
@operation("Run a pipeline now", tags=["jobs"],
           responses={"202": json_content("Pipeline", "Started"), **_NOT_FOUND})
def run_now(name: str) -> Response:
    pipelines = _pipelines()
    pipelines.run(name)
    return json_response(pipelines.get(name).public(), 202)


@bp.delete("/<name>")
@requires("deploy")
@operation("Delete a pipeline", tags=["jobs"], responses={"204": {"description": "Deleted"},
                                                          **_NOT_FOUND})
def delete(name: str) -> Response:
    _pipelines().delete(name)
    return Response(status=204)
