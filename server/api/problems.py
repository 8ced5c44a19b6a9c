"""Every error leaves as application/problem+json: ours, Flask's own (404, 405, 413, 415) and
unexpected ones (a 500 with no detail; the traceback goes to the log with the request id only)."""
from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ..errors import ScoreBridgeError
from ..telemetry import metrics
from .http import problem

log = logging.getLogger("scorebridge.errors")

_DETAILS = {
    404: "no such resource: see /docs for the API",
    405: "this method is not allowed here",
    413: "the request body is larger than this server accepts",
    415: "unsupported content type",
}


def install(app: Flask) -> None:
    @app.errorhandler(ScoreBridgeError)
    def domain_error(exc: ScoreBridgeError) -> Response:
        metrics.ERRORS.labels(metrics.error_kind(exc.status, exc.slug)).inc()
        return problem(exc.status, exc.title, exc.detail, type=exc.type, errors=exc.errors,
                       headers=exc.headers, **exc.extra)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        metrics.ERRORS.labels(metrics.error_kind(status, "")).inc()
        headers = {}
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        if status == 404:
            detail = f"no such resource: {request.path[:200]}; see /docs for the API"
        else:
            detail = _DETAILS.get(status, exc.description or exc.name)
        if status == 413:
            limit = request.max_content_length
            detail = f"the request body is larger than this endpoint accepts ({limit} bytes)"
        return problem(status, exc.name, detail, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        metrics.ERRORS.labels("server").inc()
        return problem(500, "Internal Server Error",
                       "the server failed to handle this request; the request id identifies it "
                       "in the server log")
