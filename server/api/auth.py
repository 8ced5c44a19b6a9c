"""Authentication and scope checks, applied once for every route.

Routes declare what they need with :func:`requires`, :func:`signed_in` or :func:`public`; a route
that declares none needs ``admin`` (secure by default). A key may come as ``X-API-Key``,
``Authorization: Bearer``, ``Authorization: Basic`` (the key as password, any user name: Power BI
and Excel's web dialogs), or, on GET only, the ``api_key`` query parameter (Power BI's Web API key
credential, WEBSERVICE()). When an OpenID issuer is configured, ``Authorization: Bearer`` also takes
the issuer's JWT access tokens: a JWT and a key are told apart by their form.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Any, Callable, TypeVar

from flask import Flask, Response, g, request

from .. import metrics
from ..auth.addin_grants import ACCESS_PREFIX
from ..auth.keys import SCOPES
from ..auth.principal import ANONYMOUS, Principal, from_key
from ..auth.resource import WELL_KNOWN
from ..auth.sessions import principal_from
from ..auth.tokens import TokenRejected, looks_like_jwt
from ..errors import Forbidden, Unauthorized
from ..reports.render import render
from .http import services

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("scorebridge.auth")
_UNDECLARED = object()
SIGNED_IN = "signed-in"  # any valid key or token, whatever its scopes (whoami)


def requires(scope: str) -> Callable[[F], F]:
    assert scope in SCOPES, scope

    def mark(view: F) -> F:
        view.required_scope = scope  # type: ignore[attr-defined]
        return view
    return mark


def signed_in(view: F) -> F:
    """Any caller with a valid key or token, whatever its scopes."""
    view.required_scope = SIGNED_IN  # type: ignore[attr-defined]
    return view


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
                               headers={"WWW-Authenticate": challenge()}) from None
        return decoded.partition(":")[2] or decoded.partition(":")[0] or None
    if request.method in ("GET", "HEAD") and request.args.get("api_key"):
        return request.args["api_key"]
    return None


SESSION_COOKIE = "scorebridge_session"
_SAFE = ("GET", "HEAD", "OPTIONS")


def local_path(path: str) -> str:
    """Only a path on this server (no other host, no scheme-relative //host)."""
    ok = path.startswith("/") and not path.startswith(("//", "/\\")) and "\\" not in path
    return path if ok else "/dashboard"


def current_session() -> tuple[str, dict[str, Any], Principal] | None:
    """(token, data, person) of this browser's live sign-in session, if any."""
    token = request.cookies.get(SESSION_COOKIE, "")
    store = services().web_sessions
    found = store.get(token, "active") if token and store is not None else None
    if found is None:
        return None
    data, expires = found
    return token, data, principal_from(data["person"], expires)


def signin_page(next_path: str, status: int = 401, message: str = "") -> Response:
    """The plain page a browser gets instead of the Basic prompt when sign-in is configured."""
    html = render("signin.html", heading="Sign in", next=local_path(next_path), message=message,
                  issuer=services().settings.oidc_issuer, logout_csrf="", who="")
    return Response(html, status=status, mimetype="text/html")


DISABLED = "this person's sign-in has been disabled here"


def disabled(person: Principal) -> bool:
    """Whether an admin cut this person off here (``scorebridge auth disable``)."""
    people = services().people
    return people is not None and people.is_disabled(person.issuer, person.id)


def _wants_page() -> bool:
    accept = request.accept_mimetypes
    return request.method == "GET" and services().login is not None \
        and accept.best_match(["application/json", "text/html"]) == "text/html" \
        and accept["text/html"] > accept["application/json"]


def _session_person() -> Principal | None:
    """The person a browser's session cookie names; state-changing requests must also carry
    the session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``) and, when
    the browser says where they come from, come from this server's own pages."""
    if services().login is None:
        return None
    found = current_session()
    if found is None:
        return None
    _, data, person = found
    if request.method not in _SAFE:
        origin = request.headers.get("Origin")
        own = (services().settings.public_url or request.host_url).rstrip("/")
        if origin and origin.rstrip("/") != own:
            raise Forbidden("a cross-site request with this browser's sign-in is refused")
        sent = request.headers.get("X-CSRF-Token") or (
            request.form.get("csrf_token", "") if request.mimetype == "multipart/form-data"
            else "")
        if not sent or not hmac.compare_digest(sent.encode(), str(data["csrf"]).encode()):
            raise Forbidden("this request needs the session's CSRF token (X-CSRF-Token)")
    return person


def challenge(error: str = "", description: str = "", scope: str = "",
              basic: bool = True) -> str:
    """The ``WWW-Authenticate`` value (RFC 6750): Basic for clients that use it, and Bearer with
    the issuer's ``authorization_uri`` when sign-in is configured (Power Query discovers the
    identity provider from it)."""
    params = ['realm="ScoreBridge"']
    verifier = services().tokens
    uri = verifier.authorization_uri() if verifier is not None else ""
    if uri:
        params.append(f'authorization_uri="{_quotable(uri)}"')
        # where the resource's metadata lives (RFC 9728 section 5.1): audience, issuer, scopes
        own = (services().settings.public_url or request.host_url).rstrip("/")
        params.append(f'resource_metadata="{_quotable(own + WELL_KNOWN)}"')
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quotable(description)}"')
    if scope:
        params.append(f'scope="{scope}"')
    bearer = "Bearer " + ", ".join(params)
    return 'Basic realm="ScoreBridge", ' + bearer if basic else bearer


def _quotable(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:200]


def current_key() -> Principal:
    """The verified caller (a key or a person; the name is older than sign-in)."""
    return g.api_key


def visible_models() -> frozenset[str] | None:
    """The models the caller may see in a listing: None for every model (an admin, an API key,
    a person without a limit, auth off), else only these. Listings pass it down to the
    registry, which filters without knowing who asked."""
    principal: Principal | None = getattr(g, "api_key", None)
    if principal is None or principal.models is None or "admin" in principal.grants:
        return None
    return principal.models


def require_model(name: str) -> str:
    """``name``, if the caller may use that model (routes whose model is not in their path:
    a job's, a form field's, a header's); 403 otherwise, as for a model named in the path."""
    principal: Principal | None = getattr(g, "api_key", None)
    if principal is not None and not principal.may_use(name):
        raise Forbidden(f"your sign-in does not grant access to model {name[:64]!r}")
    return name


def every_model() -> None:
    """403 unless the caller may see every model: for what covers all models at once and
    cannot be cut by model (Prometheus metrics)."""
    if visible_models() is not None:
        raise Forbidden("your sign-in grants access to some models only; this covers every "
                        "model")


def actor() -> str:
    principal: Principal | None = getattr(g, "api_key", None)
    return "anonymous" if principal is None else principal.actor


def _verify(plain: str) -> Principal:
    """The caller a presented credential names: a sign-in token (JWT form, in Authorization:
    Bearer) or an API key; 401 with a challenge otherwise."""
    bearer = request.headers.get("Authorization", "").lower().startswith("bearer")
    verifier = services().tokens
    if bearer and plain.startswith(ACCESS_PREFIX):
        return _addin_person(plain)
    if bearer and looks_like_jwt(plain):
        if verifier is None:
            raise Unauthorized("sign-in tokens are not accepted here: no identity provider is "
                               "configured; send an API key", headers={
                                   "WWW-Authenticate": challenge("invalid_token", basic=False)})
        try:
            person = verifier.verify(plain)
            if disabled(person):
                raise TokenRejected(DISABLED)
            return person
        except TokenRejected as exc:
            raise Unauthorized(exc.detail, headers={"WWW-Authenticate": challenge(
                exc.error, exc.detail, basic=False)}) from None
    key = services().keys.verify(plain)
    if key is None:
        # a Basic challenge makes browsers (and Excel's task pane) pop up a password dialog:
        # only clients that used Basic get it back
        basic = request.headers.get("Authorization", "").lower().startswith("basic")
        raise Unauthorized("the API key is not valid or has been revoked", headers={
            "WWW-Authenticate": challenge("invalid_token", basic=basic)})
    return from_key(key)


def _addin_person(plain: str) -> Principal:
    """The person an Excel add-in's access token names (:mod:`server.auth.addin_grants`)."""
    grants = services().addin_grants
    person = grants.verify(plain) if grants is not None else None
    if person is None or disabled(person):
        detail = DISABLED if person is not None else \
            "the add-in's sign-in has expired or ended: sign in again in the task pane"
        raise Unauthorized(detail, headers={"WWW-Authenticate": challenge(
            "invalid_token", detail, basic=False)})
    return person


def install(app: Flask) -> None:
    @app.before_request
    def authenticate() -> Response | None:
        if request.endpoint is None:
            return None  # unknown route: the 404 handler answers
        if request.method == "OPTIONS":
            return None  # a CORS preflight carries no key; Flask answers it with no content
        view = app.view_functions.get(request.endpoint)
        scope = None if request.endpoint.endswith(".static") else required_scope(view)
        if not services().settings.auth:
            g.api_key = ANONYMOUS
            metrics.CALLER.set(ANONYMOUS.caller)
            return None
        if scope is None:
            return None
        plain = presented_key()
        person = _session_person() if plain is None else None
        if person is not None:
            if disabled(person):
                raise Unauthorized(DISABLED)
            _check_access(person, scope)
            return None
        if plain is None and _wants_page():
            return signin_page(request.full_path.rstrip("?"))
        if plain is None:
            app.extensions["scorebridge.auth_failed"]()
            hint = (" (the api_key query parameter is accepted on GET only)"
                    if request.args.get("api_key") else "")
            signin = " (or a bearer token from the identity provider)" \
                if services().tokens is not None else ""
            raise Unauthorized("an API key is required: send it as X-API-Key, Authorization: "
                               "Bearer, or Basic password" + signin + hint,
                               headers={"WWW-Authenticate": challenge()})
        try:
            principal = _verify(plain)
        except Unauthorized:
            app.extensions["scorebridge.auth_failed"]()
            raise
        _check_access(principal, scope)
        return None


def _check_access(principal: Principal, scope: str) -> None:
    """The verified caller may use this route (its scope, and the model it names)."""
    if scope != SIGNED_IN and scope not in principal.grants:
        what = "this API key" if principal.kind == "key" else "your sign-in"
        headers = {} if principal.kind == "key" else {"WWW-Authenticate": challenge(
            "insufficient_scope", f"the '{scope}' scope is needed", scope, basic=False)}
        raise Forbidden(f"{what} lacks the '{scope}' scope needed here", headers=headers)
    model = (request.view_args or {}).get("name")
    if isinstance(model, str) and not principal.may_use(model):
        raise Forbidden(f"your sign-in does not grant access to model {model[:64]!r}")
    g.api_key = principal
    metrics.CALLER.set(principal.caller)  # scoring counts traffic by user (never payloads)
