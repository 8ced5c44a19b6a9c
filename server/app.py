"""The application factory: one place that wires settings, services and cross-cutting concerns."""
from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from . import metrics
from .config import Settings
from .registry.factory import build_registry
from .services import build_services

__all__ = ["build_registry", "create_app"]

log = logging.getLogger("scorebridge")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_request_bytes,
                      MAX_FORM_MEMORY_SIZE=1024 * 1024, MAX_FORM_PARTS=32)
    services = build_services(settings)
    app.extensions["scorebridge"] = services
    if settings.background:
        # started here (inside each gunicorn worker, as the factory runs there), and checked on
        # requests so that a process forked after start-up (gunicorn --preload) gets its own
        services.worker.ensure_started()
        services.runner.ensure_started()
        app.before_request(services.worker.ensure_started)
        app.before_request(services.runner.ensure_started)
    _install_request_ids(app)
    from .api import auth, problems

    problems.install(app)
    auth.install(app)
    from .api import limits

    limits.install(app, settings)  # after authentication: limits follow the verified key
    from .api import browser

    browser.install(app, settings)
    from .api import (
        addin_signin,
        deployment,
        excel,
        health,
        home,
        keys,
        odata,
        openapi,
        outcomes,
        pipelines,
        protocols,
        reports,
        resource,
        scoring,
        signin,
    )
    from .api import jobs as jobs_api
    from .api import registry as registry_api

    for bp in (home.bp, health.bp, openapi.bp, registry_api.bp, deployment.bp, scoring.bp, excel.bp,
               odata.bp, keys.bp, keys.whoami_bp, keys.people_bp, protocols.mlflow, protocols.v2,
               protocols.tabpy, reports.bp, jobs_api.bp, pipelines.bp, signin.bp,
               outcomes.bp, resource.bp, addin_signin.bp):
        app.register_blueprint(bp)
    if not settings.auth:
        log.warning("!" * 72)
        log.warning("SCOREBRIDGE_AUTH=off: every route is open to anyone who can reach this "
                    "server. Use this for local development only.")
        log.warning("!" * 72)
    return app


def _install_request_ids(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        environ = request.environ
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rule = request.url_rule
        route = rule.rule if rule is not None else "unmatched"
        g.request_id = rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started, g.route = time.perf_counter(), route
        metrics.REQUEST_ID.set(rid)
        metrics.CLIENT.set(metrics.client_kind(environ.get("HTTP_X_SCOREBRIDGE_CLIENT"), route))

    @app.teardown_request
    def forget_request_id(_: BaseException | None) -> None:
        # the ids live in context variables of the serving thread: a later call in that thread
        # outside a request (a CLI command, a test) must not reuse this request's id
        metrics.REQUEST_ID.set("")
        metrics.CLIENT.set("http")
        metrics.CALLER.set(metrics.NOBODY)

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id") or uuid.uuid4().hex
        _count(response)
        return response


def _count(response: Response) -> None:
    """One place that counts every request (metrics never fail a request)."""
    try:
        route = g.get("route", "unmatched")
        client = metrics.CLIENT.get()
        model = (request.view_args or {}).get("name", "") if request.url_rule else ""
        version = response.headers.get("X-Model-Version", "")
        metrics.child(metrics.REQUESTS, model, version, route, client,
                      str(response.status_code)).inc()
        started = g.get("started")
        if started is not None:
            metrics.child(metrics.DURATION, route, client).observe(time.perf_counter() - started)
    except Exception:  # pragma: no cover - telemetry must not break serving
        log.exception("could not count a request")
