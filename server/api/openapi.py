"""The OpenAPI 3 document, generated from the routes themselves, and the local interactive docs.

Each view carries its operation description (:func:`operation`); the generator walks Flask's URL map,
so a route cannot be added without appearing here, and its security follows the scope declared for
authentication. Swagger UI's files come from the ``swagger-ui-py`` package: no CDN.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Callable, TypeVar

import swagger_ui
from apispec import APISpec
from flask import Blueprint, Flask, Response, current_app, send_from_directory
from pydantic import BaseModel

from .. import __version__
from .auth import public, required_scope
from .declare import Declared
from .http import json_response
from .response_schemas import COMPONENTS

F = TypeVar("F", bound=Callable[..., Any])
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")
_STATIC = Path(__file__).parent / "static"

bp = Blueprint("docs", __name__)


def operation(summary: str, *, tags: list[str], responses: dict[str, Any] | None = None,
              description: str | None = None, path: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, headers: type[BaseModel] | None = None,
              body: type[BaseModel] | None = None, form: type[BaseModel] | None = None,
              raw: dict[str, dict[str, Any] | type[BaseModel]] | None = None,
              body_required: bool = True,
              body_limit: Callable[[], int] | None = None) -> Callable[[F], F]:
    """Describe a view for the OpenAPI document and declare what it accepts (see
    :mod:`.declare`): the view runs only on inputs that fit the declaration."""
    declared = Declared(path=path, query=query, headers=headers, body=body, form=form,
                        raw=raw or {}, body_required=body_required, body_limit=body_limit)

    def mark(view: F) -> F:
        @functools.wraps(view)
        def checked(**view_args: Any) -> Any:
            return view(**declared.bind(view_args))

        checked.openapi = {  # type: ignore[attr-defined]
            "summary": summary, "tags": tags, "responses": responses or {},
            "declared": declared,
            "description": description or (view.__doc__ or "").strip() or None,
        }
        return checked  # type: ignore[return-value]
    return mark


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def json_content(ref: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


NAMED = {"name", "model", "alias"}  # parameters checked by validate_name: 422 when invalid
_SECURED: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"BearerKey": []}, {"BasicKey": []}]


def _security(scope: str | None, method: str) -> list[dict[str, list[str]]]:
    if scope is None:
        return []
    return _SECURED + ([{"ApiKeyQuery": []}] if method == "get" else [])


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="ScoreBridge", version=__version__, openapi_version="3.1.0",
        info={"description": "Score deployed scikit-learn models from Excel, Power BI and any "
                             "HTTP client. Errors are application/problem+json (RFC 9457)."},
    )
    spec.components.security_scheme("ApiKeyHeader", {"type": "apiKey", "in": "header",
                                                     "name": "X-API-Key"})
    spec.components.security_scheme("BearerKey", {
        "type": "http", "scheme": "bearer",
        "description": "an API key, or (with sign-in configured) the identity provider's JWT "
                       "access token for the API's audience"})
    spec.components.security_scheme("BasicKey", {"type": "http", "scheme": "basic",
                                                 "description": "any user name, the key as "
                                                                "password"})
    spec.components.security_scheme("ApiKeyQuery", {"type": "apiKey", "in": "query",
                                                    "name": "api_key"})
    components: dict[str, Any] = dict(COMPONENTS)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "openapi", None)
        if meta is None:
            continue
        declared: Declared = meta["declared"]
        path = _PARAM.sub(lambda m: "{" + m.group("name") + "}", rule.rule)
        in_rule = [m.group("name") for m in _PARAM.finditer(rule.rule)]
        # a view serving several rules (with and without a version) declares every path value;
        # each rule's operation lists those its path holds
        parameters = [p for p in declared.parameters(components)
                      if p["in"] != "path" or p["name"] in in_rule]
        undeclared = set(in_rule) - {p["name"] for p in parameters if p["in"] == "path"}
        assert not undeclared, f"{rule.rule}: path values {undeclared} are not declared"
        body = declared.request_body(components)
        scope = required_scope(view)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            method = method.lower()
            responses = dict(meta["responses"])
            if scope is not None:
                responses.setdefault("401", problem_response("No valid API key"))
                if scope != "signed-in":
                    responses.setdefault("403", problem_response(f"The key lacks the '{scope}' "
                                                                 "scope"))
            if parameters or body is not None:
                responses.setdefault("400", problem_response("An input that does not fit its "
                                                             "declaration"))
            if body is not None:
                responses.setdefault("415", problem_response("Unsupported content type"))
            if any(p["name"] in NAMED for p in parameters):
                responses.setdefault("422", problem_response("Not a valid model name or alias"))
            suffix = "".join(f"_by_{name}" for name in in_rule)
            op: dict[str, Any] = {
                "summary": meta["summary"], "tags": meta["tags"],
                "operationId": f"{rule.endpoint.replace('.', '_')}{suffix}_{method}",
                "parameters": parameters, "responses": responses,
                "security": _security(scope, method),
            }
            if meta["description"]:
                op["description"] = meta["description"]
            if scope is not None:
                op["x-required-scope"] = scope
            if body is not None:
                op["requestBody"] = body
            paths.setdefault(path, {})[method] = op
    for name, schema in components.items():
        spec.components.schema(name, schema)
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
