"""Deployment over HTTP: promotion, rollback, policy, rollout state and the audit trail."""
from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import ConfigDict, Field, create_model

from ..deploy import canary_outcomes
from ..deploy.policy import ApprovalConfig, CanaryConfig, GateConfig, RollbackConfig, ShadowConfig
from ..errors import Forbidden
from ..registry.deployments import Deployments
from ..scoring.traffic import percentile_ms
from ..telemetry.monitoring import model_monitoring
from ..telemetry.outcome_sources import MAX_SOURCES, OutcomeSource
from .auth import actor, current_key, requires, visible_models
from .declare import Inputs, Parameters
from .fields import AliasName, Limit, ModelName, ModelPath, Number, Reason, VersionNumber, VersionPath, whole
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("deployment", __name__, url_prefix="/api/v1")

_NOT_FOUND = {"404": problem_response("No such model or version")}


class AliasPath(Parameters):
    name: ModelName
    alias: AliasName


class AliasRequest(Inputs):
    version: VersionNumber
    reason: Reason = ""


class RollbackRequest(Inputs):
    reason: Reason = ""


class EventsQuery(Parameters):
    model: ModelName | None = Field(None, description="only this model's events")
    limit: Limit = 100


def _partial(section: type) -> Any:
    """A policy section's fields, each optional: what a change may name (the ranges are the
    policy's own check)."""
    hints = typing.get_type_hints(section)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(section):
        nested = f.metadata.get("section")  # an object in the section (canary.outcomes)
        fields[f.name] = (_partial(nested) | None, Field(None)) if nested is not None else \
            (hints[f.name], Field(None, strict=True))
    return create_model(f"{section.__name__.removesuffix('Config')}Change", __base__=Inputs,
                        **fields)


GatesChange = _partial(GateConfig)
CanaryChange = _partial(CanaryConfig)
ShadowChange = _partial(ShadowConfig)
RollbackChange = _partial(RollbackConfig)
ApprovalChange = _partial(ApprovalConfig)


class PolicyChange(Inputs):
    """Fields not given keep their current values; sections merge field by field."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "policy": "canary", "canary": {"share": 0.1, "min_requests": 200,
                                       "outcomes": {"metric": "roc_auc", "max_drop": 0.02,
                                                    "min_outcomes": 200}}}})

    policy: Literal["manual", "auto", "canary", "shadow"] | None = None
    gates: GatesChange | None = None        # type: ignore[valid-type]
    canary: CanaryChange | None = None      # type: ignore[valid-type]
    shadow: ShadowChange | None = None      # type: ignore[valid-type]
    rollback: RollbackChange | None = None  # type: ignore[valid-type]
    approval: ApprovalChange | None = None  # type: ignore[valid-type]


@bp.post("/models/<name>/aliases/<alias>")
@requires("deploy")
@operation(
    "Point an alias at a version (promotion for 'production')", tags=["deployment"],
    path=AliasPath, body=AliasRequest,
    responses={"200": json_content("Version"), **_NOT_FOUND,
               "409": problem_response("A four-eyes policy: not approved by a second person"),
               "422": problem_response("Invalid alias")})
def set_alias(name: str, alias: str, body: AliasRequest) -> Response:
    info = services().set_alias(name, alias, body.version, actor=actor(), reason=body.reason)
    return json_response(info.public())


class ApprovalRequest(Inputs):
    model_config = ConfigDict(json_schema_extra={"example": {"decision": "approve",
                                                             "reason": "holdout looks right"}})

    decision: Literal["approve", "refuse"]
    reason: str = Field("", max_length=500)


@bp.post("/models/<name>/versions/<version>/approval")
@requires("deploy")
@operation(
    "Approve or refuse a version before promotion (four-eyes; not by who registered it)",
    tags=["deployment"], path=VersionPath, body=ApprovalRequest,
    responses={"200": json_content("Approval"), **_NOT_FOUND,
               "403": problem_response("The one who registered it, or an API key")})
def decide_approval(name: str, version: int, body: ApprovalRequest) -> Response:
    if current_key().kind == "key":
        raise Forbidden("approvals are made by a signed-in person, not an API key")
    decided = services().decide_approval(name, version, approve=body.decision == "approve",
                                         actor=actor(), reason=body.reason)
    return json_response(decided)


@bp.post("/models/<name>/rollback")
@requires("deploy")
@operation(
    "Return production to the previous good version", tags=["deployment"], path=ModelPath,
    body=RollbackRequest, body_required=False,
    responses={"200": json_content("Version"), **_NOT_FOUND,
               "409": problem_response("Nothing to roll back to")})
def rollback(name: str, body: RollbackRequest) -> Response:
    info = services().rollback(name, actor=actor(), reason=body.reason)
    return json_response(info.public())


@bp.get("/events")
@requires("read")
@operation("The audit trail, newest first", tags=["deployment"], query=EventsQuery,
           responses={"200": json_content("EventList")})
def events(query: EventsQuery) -> Response:
    # a person limited to some models sees their events only, and none of no model (keys)
    found = services().registry.events(query.model, limit=query.limit, only=visible_models())
    return json_response({"events": [e.public() for e in found]})


@bp.put("/models/<name>/policy")
@requires("deploy")
@operation(
    "Set the deployment policy (manual, auto, canary, shadow)", tags=["deployment"],
    path=ModelPath, body=PolicyChange,
    responses={"200": json_content("Policy"), **_NOT_FOUND,
               "422": problem_response("Invalid policy")})
def set_policy(name: str, body: PolicyChange) -> Response:
    """Fields not given keep their current values; sections merge field by field."""
    policy = services().set_policy(name, body.model_dump(exclude_unset=True), actor=actor())
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
        if r.kind == "canary":  # what its outcomes say so far (null: not judged on outcomes)
            verdict = canary_outcomes.judge(svc.registry, r)
            item["outcomes"] = verdict.detail if verdict is not None else None
        open_rollouts.append(item)
    prod = model.production
    return {
        "model": name, "policy": model.policy, "aliases": model.aliases,
        "production": prod.version if prod else None,
        "pending_versions": [v.version for v in model.versions if v.pipeline != "done"],
        "open_rollouts": open_rollouts,
        "recent_rollouts": [r.public() for r in deployments.rollouts(name)],
    }


class MonitoringQuery(Parameters):
    hours: whole(1, 8760, "the window, in hours") = 24  # type: ignore[valid-type]


class OutcomeAlert(Inputs):
    metric: Literal["accuracy", "f1_macro", "roc_auc", "log_loss", "calibration_error", "r2",
                    "mae", "rmse"] | None = Field(
        None, description="the metric watched (default: roc_auc for two classes, accuracy for "
                          "more, r2 for regressors)")
    max_drop: Number | None = Field(None, ge=0, description="how much worse than the holdout "
                                                            "it may get (default 0.05)")
    last: whole(10, 1_000_000, "the window: the newest N outcomes (default 500)") = None  # type: ignore[valid-type]
    min_outcomes: whole(1, 1_000_000, "fewer matched outcomes decide nothing (default 100)") = None  # type: ignore[valid-type]


class OutcomeSettings(Inputs):
    enabled: bool | None = Field(None, strict=True,
                                 description="keep every scored row for joining outcomes")
    key: str | None = Field(None, min_length=1, max_length=128,
                            description="the business key column (never a model input)")
    alert: OutcomeAlert | None = None
    sources: list[OutcomeSource] | None = Field(
        None, max_length=MAX_SOURCES,
        description="where outcomes are read on a schedule: SQL queries (admin only) and file "
                    "globs (under SCOREBRIDGE_JOB_ROOTS); the list replaces the stored one")


class MonitoringChange(Inputs):
    log: bool | None = Field(None, strict=True, description="log predictions for monitoring")
    sample_rate: Number | None = Field(None, ge=0, le=1,
                                       description="the share of requests logged")
    outcomes: OutcomeSettings | None = Field(None, description="outcome tracking")


@bp.get("/models/<name>/monitoring")
@requires("read")
@operation(
    "Drift and data quality of the production version over a window of logged predictions",
    tags=["monitoring"], path=ModelPath, query=MonitoringQuery,
    responses={"200": json_content("Monitoring"), **_NOT_FOUND})
def get_monitoring(name: str, query: MonitoringQuery) -> Response:
    return json_response(model_monitoring(services().registry, name, query.hours))


@bp.put("/models/<name>/monitoring")
@requires("deploy")
@operation(
    "Prediction log and outcome tracking settings for a model",
    tags=["monitoring"], path=ModelPath, body=MonitoringChange,
    responses={"200": json_content("MonitoringSettings"), **_NOT_FOUND,
               "403": problem_response("A SQL outcome source needs an admin key"),
               "422": problem_response("Invalid settings (the problem names the field)")})
def set_monitoring(name: str, body: MonitoringChange) -> Response:
    settings = services().set_monitoring(name, body.model_dump(exclude_unset=True),
                                         may_query_sql="admin" in current_key().grants,
                                         actor=actor())
    return json_response(settings)


@bp.get("/models/<name>/deployment")
@requires("read")
@operation("Deployment state: policy, production, canary/shadow with live traffic",
           tags=["deployment"], path=ModelPath,
           responses={"200": json_content("Deployment"), **_NOT_FOUND})
def get_deployment(name: str) -> Response:
    return json_response(deployment_state(name))


class TrafficUsersQuery(Parameters):
    since: datetime | None = Field(None, description="from this time (whole hours; default: "
                                                     "everything kept, SCOREBRIDGE_TRAFFIC_DAYS)")


@bp.get("/models/<name>/traffic/users")
@requires("read")
@operation("Scoring traffic by user: requests, errors and rows per key or person (counts only)",
           tags=["monitoring"], path=ModelPath, query=TrafficUsersQuery,
           responses={"200": json_content("TrafficByUser"), **_NOT_FOUND})
def traffic_by_user(name: str, query: TrafficUsersQuery) -> Response:
    """Busiest first. A caller is ``key:<id>`` or ``user:<subject>`` with its display name;
    what was scored is never kept."""
    return json_response(services().traffic_by_user(name, query.since))
