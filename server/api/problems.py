"""Every error leaves as application/problem+json: ours, Flask's own (404, 405, 413, 415) and
unexpected ones (a 500 with no detail; the traceback goes to the log with the request id only)."""
from __future__ import annotations

import errno
import logging

from flask import Flask, Response, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from .. import metrics
from ..errors import InsufficientStorage, ScoreBridgeError, Unavailable
from .http import problem

log = logging.getLogger("scorebridge.errors")

_DETAILS = {
    404: "no such resource: see /docs for the API",
    405: "this method is not allowed here",
    413: "the request body is larger than this server accepts",
    415: "unsupported content type",
}


def known_failure(exc: BaseException) -> ScoreBridgeError | None:
    """Failures of the machine rather than of the request: a full disk, the database away.
    Nothing was stored (writes are atomic), so the client may simply retry later."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("the server's disk is full: nothing was stored; try again "
                                   "later", headers={"Retry-After": "60"})
    if isinstance(exc, (OperationalError, InterfaceError)) or \
            (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return Unavailable("the registry database is not reachable: nothing was changed; "
                           "deployed models keep scoring; try again shortly",
                           headers={"Retry-After": "5"})
    return None


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
        known = known_failure(exc)
        if known is not None:
            log.error("%s %s: %s (%s)", request.method, request.path, known.detail, exc)
            return domain_error(known)
        log.exception("unhandled error on %s %s", request.method, request.path)
        metrics.ERRORS.labels("server").inc()
        return problem(500, "Internal Server Error",
                       "the server failed to handle this request; the request id identifies it "
                       "in the server log")
