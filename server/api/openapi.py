"""The OpenAPI 3 document, generated from the routes themselves, and the local interactive docs.

Each view carries its operation description (:func:`operation`); the generator walks Flask's URL map,
so a route cannot be added without appearing here, and its security follows the scope declared for
authentication. Swagger UI's files come from the ``swagger-ui-py`` package: no CDN.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, TypeVar

import swagger_ui
from apispec import APISpec
from flask import Blueprint, Flask, Response, current_app, send_from_directory

from .. import __version__
from ..registry.service import NAME_RE
from .auth import public, required_scope
from .http import json_response
from .schemas import COMPONENTS

F = TypeVar("F", bound=Callable[..., Any])
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")
_STATIC = Path(__file__).parent / "static"

bp = Blueprint("docs", __name__)


def operation(summary: str, *, tags: list[str], responses: dict[str, Any] | None = None,
              request_body: dict[str, Any] | None = None,
              parameters: list[dict[str, Any]] | None = None,
              description: str | None = None) -> Callable[[F], F]:
    """Describe a view for the OpenAPI document."""
    def mark(view: F) -> F:
        view.openapi = {  # type: ignore[attr-defined]
            "summary": summary, "tags": tags, "responses": responses or {},
            "requestBody": request_body, "parameters": parameters or [],
            "description": description or (view.__doc__ or "").strip() or None,
        }
        return view
    return mark


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def json_content(ref: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


NAMED = {"name", "model", "alias"}  # parameters checked by validate_name: 422 when invalid
_SECURED = [{"ApiKeyHeader": []}, {"BearerKey": []}, {"BasicKey": []}]


def _security(scope: str | None, method: str) -> list[dict[str, list[str]]]:
    if scope is None:
        return []
    return _SECURED + ([{"ApiKeyQuery": []}] if method == "get" else [])


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="ScoreBridge", version=__version__, openapi_version="3.0.3",
        info={"description": "Score deployed scikit-learn models from Excel, Power BI and any "
                             "HTTP client. Errors are application/problem+json (RFC 9457)."},
    )
    for name, schema in COMPONENTS.items():
        spec.components.schema(name, schema)
    spec.components.security_scheme("ApiKeyHeader", {"type": "apiKey", "in": "header",
                                                     "name": "X-API-Key"})
    spec.components.security_scheme("BearerKey", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("BasicKey", {"type": "http", "scheme": "basic",
                                                 "description": "any user name, the key as "
                                                                "password"})
    spec.components.security_scheme("ApiKeyQuery", {"type": "apiKey", "in": "query",
                                                    "name": "api_key"})
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "openapi", None)
        if meta is None:
            continue
        path = _PARAM.sub(lambda m: "{" + m.group("name") + "}", rule.rule)
        path_params = [{"name": m.group("name"), "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 0} if m.group("conv") == "int"
                        else {"type": "string", "pattern": NAME_RE.pattern}
                        if m.group("name") == "name" else {"type": "string"}}
                       for m in _PARAM.finditer(rule.rule)]
        scope = required_scope(view)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            method = method.lower()
            responses = dict(meta["responses"])
            if scope is not None:
                responses.setdefault("401", problem_response("No valid API key"))
                responses.setdefault("403", problem_response(f"The key lacks the '{scope}' scope"))
            if meta["parameters"]:
                responses.setdefault("400", problem_response("A malformed query parameter"))
            if any(p["name"] in NAMED for p in path_params + meta["parameters"]):
                responses.setdefault("422", problem_response("Not a valid model name or alias"))
            # one view may serve several rules (e.g. with and without a version): the path's
            # parameters make each operation id unique
            suffix = "".join(f"_by_{p['name']}" for p in path_params)
            op: dict[str, Any] = {
                "summary": meta["summary"], "tags": meta["tags"],
                "operationId": f"{rule.endpoint.replace('.', '_')}{suffix}_{method}",
                "parameters": path_params + meta["parameters"],
                "responses": responses, "security": _security(scope, method),
            }
            if meta["description"]:
                op["description"] = meta["description"]
            if scope is not None:
                op["x-required-scope"] = scope
            if meta["requestBody"] is not None:
                op["requestBody"] = meta["requestBody"]
            paths.setdefault(path, {})[method] = op
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
@public
def openapi_json() -> Response:
    cached = current_app.extensions.get("scorebridge.openapi")
    if cached is None:
        cached = current_app.extensions["scorebridge.openapi"] = build_spec(current_app)
    return json_response(cached)


@bp.get("/docs")
@public
def docs_page() -> Response:
    return send_from_directory(_STATIC, "docs.html")


@bp.get("/docs/assets/<path:filename>")
@public
def docs_asset(filename: str) -> Response:
    if filename == "init.js":
        return send_from_directory(_STATIC, "docs-init.js")
    return send_from_directory(SWAGGER_DIR, filename)
