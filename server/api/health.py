"""Liveness and readiness for load balancers and orchestrators."""
from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy import text

from .. import __version__, metrics
from .auth import every_model, public, requires
from .http import json_response, problem, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
@operation("Liveness: the process answers", tags=["health"],
           responses={"200": json_content("Health")})
def healthz() -> Response:
    return json_response({"status": "ok", "version": __version__})


@bp.get("/metrics")
@requires("read")
@operation("Prometheus metrics (text format), summed over every worker", tags=["health"],
           responses={"200": {"description": "Prometheus exposition format", "content": {
               "text/plain": {"schema": {"type": "string"}}}}})
def prometheus_metrics() -> Response:
    """Labelled by model, every model's: not for a person limited to some models."""
    every_model()
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/readyz")
@public
@operation("Readiness: the database answers and every production model is loaded",
           tags=["health"], responses={"200": json_content("Health"),
                                       "503": problem_response("Not ready yet")})
def readyz() -> Response:
    svc = services()
    try:
        with svc.registry.reading() as session:
            session.execute(text("SELECT 1"))
        models = svc.registry.list_models()
    except Exception:
        return problem(503, "Service Unavailable", "the registry database does not answer",
                       headers={"Retry-After": "5"})
    loaded = {}
    for model in models:
        prod = svc.scorer.deployments.route(model.name).production
        if prod is None:
            continue
        try:
            svc.scorer.cache.get(prod)
            loaded[model.name] = prod.version
        except Exception as exc:  # a model that cannot load makes the instance unready
            return problem(503, "Service Unavailable",
                           f"production model {model.name!r} v{prod.version} is not loaded "
                           f"({type(exc).__name__})", headers={"Retry-After": "5"})
    return json_response({"status": "ready", "version": __version__, "models": loaded,
                          "worker": svc.worker.id})
