"""Deployment over HTTP: promotion, rollback, policy, rollout state and the audit trail."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from ..deploy.policy import Policy
from ..errors import MalformedRequest
from ..registry.deployments import Deployments
from ..registry.service import validate_name
from ..telemetry.monitoring import model_monitoring
from ..scoring.traffic import percentile_ms
from .auth import actor, requires
from .http import int_arg, json_body, json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("deployment", __name__, url_prefix="/api/v1")

_NOT_FOUND = {"404": problem_response("No such model or version")}


def _object_body(allowed: set[str]) -> dict[str, Any]:
    body = json_body() if request.content_length else {}
    if not isinstance(body, dict):
        raise MalformedRequest("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise MalformedRequest(f"unknown field(s): {', '.join(unknown)[:200]}")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise MalformedRequest("'reason' must be a string of at most 500 characters")
    return body


@bp.post("/models/<name>/aliases/<alias>")
@requires("deploy")
@operation(
    "Point an alias at a version (promotion for 'production')", tags=["deployment"],
    request_body={"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/AliasRequest"}}}},
    responses={"200": json_content("Version"), "400": problem_response("Malformed request"),
               **_NOT_FOUND, "422": problem_response("Invalid alias")})
def set_alias(name: str, alias: str) -> Response:
    validate_name(name)
    validate_name(alias, "alias")
    body = _object_body({"version", "reason"})
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MalformedRequest("'version' must be a positive integer")
    svc = services()
    info = svc.registry.set_alias(name, alias, version, actor=actor(), reason=body.get("reason", ""))
    svc.scorer.deployments.invalidate()
    return json_response(info.public())


@bp.post("/models/<name>/rollback")
@requires("deploy")
@operation(
    "Return production to the previous good version", tags=["deployment"],
    request_body={"required": False, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/RollbackRequest"}}}},
    responses={"200": json_content("Version"), "400": problem_response("Malformed request"),
               **_NOT_FOUND, "409": problem_response("Nothing to roll back to")})
def rollback(name: str) -> Response:
    validate_name(name)
    body = _object_body({"reason"})
    svc = services()
    info = svc.registry.rollback(name, actor=actor(), reason=body.get("reason", ""))
    svc.scorer.deployments.invalidate()
    return json_response(info.public())


@bp.get("/events")
@requires("read")
@operation(
    "The audit trail, newest first", tags=["deployment"],
    parameters=[{"name": "model", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
    responses={"200": json_content("EventList"), "400": problem_response("Bad parameters")})
def events() -> Response:
    model = request.args.get("model") or None
    if model is not None:
        validate_name(model)
    limit = int_arg("limit", minimum=1, maximum=1000) or 100
    found = services().registry.events(model, limit=limit)
    return json_response({"events": [e.public() for e in found]})


@bp.put("/models/<name>/policy")
@requires("deploy")
@operation(
    "Set the deployment policy (manual, auto, canary, shadow)", tags=["deployment"],
    request_body={"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Policy"}}}},
    responses={"200": json_content("Policy"), "400": problem_response("Malformed request"),
               **_NOT_FOUND, "422": problem_response("Invalid policy")})
def set_policy(name: str) -> Response:
    """Fields not given keep their current values; sections merge field by field."""
    validate_name(name)
    body = json_body()
    if not isinstance(body, dict):
        raise MalformedRequest("the body must be a JSON object such as {\"policy\": \"canary\"}")
    svc = services()
    current = Policy.from_dict(svc.registry.get_model(name).policy)
    policy = current.merged(body).to_dict()
    svc.registry.set_policy(name, policy, actor=actor())
    svc.scorer.deployments.invalidate()
    return json_response(policy)


def deployment_state(name: str) -> dict[str, Any]:
    """Policy, production, open rollouts with their live traffic, and recent rollouts."""
    svc = services()
    model = svc.registry.get_model(name)
    deployments = Deployments(svc.registry)

    def traffic(version: int | None, since: Any) -> dict[str, Any] | None:
        if version is None:
            return None
        t = deployments.traffic(name, version, since)
        out = t.public()
        out["p50_ms"], out["p95_ms"] = percentile_ms(t.buckets, 0.5), percentile_ms(t.buckets, 0.95)
        return out

    open_rollouts = []
    for r in deployments.open_rollouts(name):
        item = r.public()
        item["traffic"] = traffic(r.version, r.started_at)
        item["baseline_traffic"] = traffic(r.baseline, r.started_at)
        open_rollouts.append(item)
    prod = model.production
    return {
        "model": name, "policy": model.policy, "aliases": model.aliases,
        "production": prod.version if prod else None,
        "pending_versions": [v.version for v in model.versions if v.pipeline != "done"],
        "open_rollouts": open_rollouts,
        "recent_rollouts": [r.public() for r in deployments.rollouts(name)],
    }


@bp.get("/models/<name>/monitoring")
@requires("read")
@operation(
    "Drift and data quality of the production version over a window of logged predictions",
    tags=["monitoring"],
    parameters=[{"name": "hours", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 8760}}],
    responses={"200": json_content("Monitoring"), **_NOT_FOUND,
               "400": problem_response("Bad window")})
def get_monitoring(name: str) -> Response:
    hours = int_arg("hours", minimum=1, maximum=8760) or 24
    return json_response(model_monitoring(services().registry, validate_name(name), hours))


@bp.put("/models/<name>/monitoring")
@requires("deploy")
@operation(
    "Prediction log settings for a model: on or off, and the share of requests sampled",
    tags=["monitoring"],
    request_body={"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/MonitoringSettings"}}}},
    responses={"200": json_content("MonitoringSettings"), **_NOT_FOUND,
               "400": problem_response("Malformed request")})
def set_monitoring(name: str) -> Response:
    validate_name(name)
    body = json_body()
    if not isinstance(body, dict) or set(body) - {"log", "sample_rate"}:
        raise MalformedRequest('send {"log": true|false, "sample_rate": 0..1}')
    if "log" in body and not isinstance(body["log"], bool):
        raise MalformedRequest("'log' must be true or false")
    rate = body.get("sample_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not 0 <= rate <= 1):
        raise MalformedRequest("'sample_rate' must be a number from 0 to 1")
    svc = services()
    settings = {**svc.registry.get_model(name).monitoring, **body}
    svc.registry.set_monitoring(name, settings, actor=actor())
    svc.scorer.deployments.invalidate()
    return json_response(settings)


@bp.get("/models/<name>/deployment")
@requires("read")
@operation("Deployment state: policy, production, canary/shadow with live traffic",
           tags=["deployment"], responses={"200": json_content("Deployment"), **_NOT_FOUND})
def get_deployment(name: str) -> Response:
    return json_response(deployment_state(validate_name(name)))
