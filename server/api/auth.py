"""API-key authentication and scope checks, applied once for every route.

Routes declare what they need with :func:`requires` or :func:`public`; a route that declares neither
needs ``admin`` (secure by default). A key may come as ``X-API-Key``, ``Authorization: Bearer``,
``Authorization: Basic`` (the key as password, any user name: Power BI and Excel's web dialogs), or,
on GET only, the ``api_key`` query parameter (Power BI's Web API key credential, WEBSERVICE()).
"""
from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from flask import Flask, g, request

from ..auth.keys import SCOPES, KeyInfo
from ..errors import Forbidden, Unauthorized
from .http import services

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("scorebridge.auth")
_UNDECLARED = object()
CHALLENGE = 'Basic realm="ScoreBridge", Bearer realm="ScoreBridge"'
BEARER_CHALLENGE = 'Bearer realm="ScoreBridge", error="invalid_token"'
ANONYMOUS = KeyInfo(key_id="anonymous", name="auth off", scopes=SCOPES,
                    created_at=datetime(2020, 1, 1, tzinfo=timezone.utc))


def requires(scope: str) -> Callable[[F], F]:
    assert scope in SCOPES, scope

    def mark(view: F) -> F:
        view.required_scope = scope  # type: ignore[attr-defined]
        return view
    return mark


def public(view: F) -> F:
    view.required_scope = None  # type: ignore[attr-defined]
    return view


def required_scope(view: Callable[..., Any] | None) -> str | None:
    scope = getattr(view, "required_scope", _UNDECLARED)
    return "admin" if scope is _UNDECLARED else scope  # type: ignore[return-value]


def presented_key() -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the Basic credentials are not valid base64",
                               headers={"WWW-Authenticate": CHALLENGE}) from None
        return decoded.partition(":")[2] or decoded.partition(":")[0] or None
    if request.method in ("GET", "HEAD") and request.args.get("api_key"):
        return request.args["api_key"]
    return None


def current_key() -> KeyInfo:
    return g.api_key


def actor() -> str:
    key: KeyInfo | None = getattr(g, "api_key", None)
    if key is None or key.key_id == "anonymous":
        return "anonymous"
    return f"key:{key.key_id}" + (f" ({key.name})" if key.name else "")


def install(app: Flask) -> None:
    @app.before_request
    def authenticate() -> None:
        if request.endpoint is None:
            return  # unknown route: the 404 handler answers
        if request.method == "OPTIONS":
            return  # a CORS preflight carries no key; Flask answers it with no content
        view = app.view_functions.get(request.endpoint)
        scope = None if request.endpoint.endswith(".static") else required_scope(view)
        if not services().settings.auth:
            g.api_key = ANONYMOUS
            return
        if scope is None:
            return
        plain = presented_key()
        if plain is None:
            app.extensions["scorebridge.auth_failed"]()
            hint = (" (the api_key query parameter is accepted on GET only)"
                    if request.args.get("api_key") else "")
            raise Unauthorized("an API key is required: send it as X-API-Key, Authorization: "
                               "Bearer, or Basic password" + hint,
                               headers={"WWW-Authenticate": CHALLENGE})
        key = services().keys.verify(plain)
        if key is None:
            app.extensions["scorebridge.auth_failed"]()
            # a Basic challenge makes browsers (and Excel's task pane) pop up a password dialog:
            # only clients that used Basic get it back
            basic = request.headers.get("Authorization", "").lower().startswith("basic")
            raise Unauthorized("the API key is not valid or has been revoked", headers={
                "WWW-Authenticate": CHALLENGE if basic else BEARER_CHALLENGE})
        if scope not in key.grants:
            raise Forbidden(f"this API key lacks the '{scope}' scope needed here")
        g.api_key = key
