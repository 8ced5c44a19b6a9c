"""Small HTTP helpers shared by every blueprint: services, JSON and problem documents."""
from __future__ import annotations

from typing import Any

import orjson
from flask import Response, current_app, g

from ..errors import FieldError
from ..services import Services

PROBLEM_JSON = "application/problem+json"


def services() -> Services:
    """The current application's services (see :func:`server.services.build_services`)."""
    return current_app.extensions["scorebridge"]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None,
                  mimetype: str = "application/json") -> Response:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return Response(body, status=status, headers=headers, mimetype=mimetype)


def problem(status: int, title: str, detail: str, *, type: str = "about:blank",
            errors: list[FieldError] | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> Response:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {"type": type, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = [e.as_dict() for e in errors[:1000]]
        if len(errors) > 1000:
            body["errors_truncated"] = len(errors) - 1000
    body.update(extra)
    rid = getattr(g, "request_id", None)
    if rid:
        body["request_id"] = rid
    return json_response(body, status, headers, mimetype=PROBLEM_JSON)
