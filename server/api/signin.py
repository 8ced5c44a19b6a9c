"""Browser sign-in pages: ``/auth/login``, ``/auth/callback``, ``/auth/logout``.

The authorization code flow with PKCE (:mod:`server.auth.login`) against the configured issuer,
ending in a session kept on the server whose random token is the only thing in the cookie
(HttpOnly, SameSite=Lax, Secure when served over https). Signing out is a POST carrying the
session's CSRF token; :mod:`.auth` asks for that token on every state-changing request a session
cookie authenticates.
"""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, Response, request
from pydantic import Field

from ..auth.login import WebLogin
from ..auth.sessions import PENDING_SECONDS, WebSessions, principal_data
from ..errors import Forbidden, NotFound, Unauthorized
from ..reports.render import render
from .auth import DISABLED, SESSION_COOKIE, current_session, disabled, local_path, public, signin_page
from .declare import Inputs, Parameters
from .http import json_response, services
from .openapi import operation, problem_response

bp = Blueprint("signin", __name__, url_prefix="/auth")
PENDING_COOKIE = "scorebridge_signin"
_PAGE = {"200": {"description": "HTML page", "content": {"text/html": {
    "schema": {"type": "string"}}}}}
_REDIRECT = {"302": {"description": "To the identity provider"}}


class LoginQuery(Parameters):
    next: str = Field("/dashboard", max_length=2000,
                      description="where to go once signed in (a path on this server)")


class CallbackQuery(Parameters):
    code: str = Field("", max_length=4096)
    state: str = Field("", max_length=512)
    error: str = Field("", max_length=200)
    iss: str = Field("", max_length=500, description="the issuer that answers (RFC 9207)")


class LogoutForm(Inputs):
    csrf_token: str = Field(max_length=128)


def _flow() -> tuple[WebLogin, WebSessions]:
    svc = services()
    if svc.login is None or svc.web_sessions is None:
        raise NotFound("browser sign-in is not configured (SCOREBRIDGE_OIDC_ISSUER, "
                       "SCOREBRIDGE_OIDC_AUDIENCE and SCOREBRIDGE_OIDC_CLIENT_ID)")
    return svc.login, svc.web_sessions


def _secure() -> bool:
    return request.is_secure or services().settings.public_url.startswith("https://")


def _callback_url() -> str:
    base = services().settings.public_url or request.host_url.rstrip("/")
    return base + "/auth/callback"


@bp.get("/login")
@public
@operation("Browser sign-in: to the identity provider (authorization code flow with PKCE)",
           tags=["sign-in"], query=LoginQuery,
           responses={**_REDIRECT, "404": problem_response("Sign-in is not configured")})
def login(query: LoginQuery) -> Response:
    flow, store = _flow()
    pending, url = flow.start(_callback_url(), local_path(query.next))
    token = store.create("pending", pending, PENDING_SECONDS)
    resp = Response(status=302, headers={"Location": url})
    resp.set_cookie(PENDING_COOKIE, token, max_age=PENDING_SECONDS, path="/auth",
                    secure=_secure(), httponly=True, samesite="Lax")
    return resp


@bp.get("/callback")
@public
@operation("Browser sign-in: the identity provider's answer", tags=["sign-in"],
           query=CallbackQuery,
           responses={"303": {"description": "Signed in: to the page asked for"},
                      "401": problem_response("The sign-in failed or does not belong here"),
                      "404": problem_response("Sign-in is not configured")})
def callback(query: CallbackQuery) -> Response:
    flow, store = _flow()
    pending = store.take(request.cookies.get(PENDING_COOKIE, ""), "pending")
    if pending is None:
        raise Unauthorized("no sign-in is in progress in this browser (or it took over 10 "
                           "minutes): start again at /auth/login")
    if query.iss and query.iss != services().settings.oidc_issuer:
        raise Unauthorized("the sign-in answer comes from another issuer")
    if query.error or not query.code:
        why = query.error[:60] or "no code"
        raise Unauthorized(f"the identity provider did not sign you in ({why})")
    person = flow.finish(pending, query.code, query.state)
    if disabled(person):
        raise Unauthorized(DISABLED)
    seconds = services().settings.oidc_session_hours * 3600
    token = store.create("active", {"person": principal_data(person),
                                    "csrf": secrets.token_urlsafe(24)}, seconds)
    resp = Response(status=303, headers={
        "Location": local_path(str(pending.get("next", "/dashboard")))})
    resp.set_cookie(SESSION_COOKIE, token, max_age=int(seconds), path="/", secure=_secure(),
                    httponly=True, samesite="Lax")
    resp.delete_cookie(PENDING_COOKIE, path="/auth")
    return resp


@bp.get("/session")
@public
@operation("This browser's sign-in, for the server's own pages (the API docs send its CSRF "
           "token with the requests they try)", tags=["sign-in"],
           responses={"200": {"description": "Signed in or not", "content": {
               "application/json": {"schema": {"type": "object", "required": ["sign_in"],
                                               "properties": {
                                                   "sign_in": {"type": "boolean"},
                                                   "who": {"type": ["string", "null"]},
                                                   "csrf_token": {"type": ["string", "null"]}}}}}}})
def session_info() -> Response:
    """Read by same-origin pages only: the API shares nothing with other origins' credentialed
    requests, so no other site can read the token."""
    found = current_session() if services().login is not None else None
    return json_response({"sign_in": services().login is not None,
                          "who": found[2].actor if found else None,
                          "csrf_token": str(found[1]["csrf"]) if found else None},
                         headers={"Cache-Control": "no-store"})


@bp.get("/logout")
@public
@operation("Browser sign-out: the page with the sign-out button", tags=["sign-in"],
           responses=_PAGE)
def logout_page() -> Response:
    found = current_session()
    if found is None:
        return signin_page("/dashboard", 200, "You are signed out.")
    _, data, person = found
    html = render("signin.html", heading="Sign out", next="/dashboard", message="",
                  issuer=services().settings.oidc_issuer, logout_csrf=data["csrf"],
                  who=person.actor)
    return Response(html, mimetype="text/html")


@bp.post("/logout")
@public
@operation("Browser sign-out (the form's CSRF token is required)", tags=["sign-in"],
           form=LogoutForm,
           responses={**_PAGE, "403": problem_response("Not this session's form")})
def logout(body: LogoutForm) -> Response:
    found = current_session()
    if found is None or not hmac.compare_digest(body.csrf_token.encode(),
                                                str(found[1]["csrf"]).encode()):
        raise Forbidden("this sign-out form does not belong to this browser's session")
    services().web_sessions.end(found[0])  # type: ignore[union-attr]
    resp = signin_page("/dashboard", 200, "You are signed out.")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
