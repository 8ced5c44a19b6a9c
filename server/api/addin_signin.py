"""The Excel add-in's sign-in: the Office dialog's page, and the token endpoint the task pane
redeems its code at and refreshes with (:mod:`server.auth.addin_grants` says why it is shaped
so).

The dialog opens ``/excel/signin?challenge=...`` (on the add-in's own domain, as Office wants a
dialog's first page). Without a browser sign-in it goes through ``/auth/login`` and back; then its
page hands a one-time code to the task pane with ``Office.context.ui.messageParent``. The page
may not be framed, so no other site can read the code out of it; and the code is worthless
without the verifier that only the pane that opened the dialog holds.
"""
from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from flask import Blueprint, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import Field

from ..auth.addin_grants import CHALLENGE_LENGTH, AddinGrants, GrantRefused
from ..errors import InvalidInput, NotFound, Unauthorized
from ..registry.schema import utcnow
from .auth import DISABLED, current_session, disabled, public
from .browser import OFFICE_SCRIPTS
from .declare import Inputs, Parameters
from .excel import addin_dir, namespace
from .http import json_response, problem, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("addin_signin", __name__)
# the dialog's page loads office.js and its own script, and is framed by nobody
DIALOG_POLICY = (f"default-src 'self'; script-src 'self' {OFFICE_SCRIPTS}; style-src 'self'; "
                 "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                 "form-action 'self'; frame-ancestors 'none'")
_CHALLENGE = r"^[A-Za-z0-9_-]+$"


class DialogQuery(Parameters):
    challenge: str = Field(min_length=CHALLENGE_LENGTH, max_length=CHALLENGE_LENGTH,
                           pattern=_CHALLENGE,
                           description="BASE64URL(SHA-256(code_verifier)) of the task pane")


class TokenRequest(Inputs):
    grant_type: Literal["authorization_code", "refresh_token"]
    code: str | None = Field(None, max_length=128, description="the dialog's one-time code")
    code_verifier: str | None = Field(None, min_length=43, max_length=128, pattern=_CHALLENGE,
                                      description="the verifier the challenge was made from")
    refresh_token: str | None = Field(None, max_length=160)


class RevokeRequest(Inputs):
    token: str = Field(max_length=160, description="the refresh token to end")


def _grants() -> AddinGrants:
    found = services().addin_grants
    if found is None:
        raise NotFound("sign-in is not configured here (SCOREBRIDGE_OIDC_ISSUER, "
                       "SCOREBRIDGE_OIDC_AUDIENCE and SCOREBRIDGE_OIDC_CLIENT_ID): use an API key")
    return found


@bp.get("/excel/signin")
@public
@operation("The Excel add-in's sign-in dialog: to the identity provider if need be, then a "
           "one-time code for the task pane", tags=["sign-in", "excel"], query=DialogQuery,
           responses={"200": {"description": "HTML page", "content": {"text/html": {
               "schema": {"type": "string"}}}},
               "302": {"description": "Not signed in in this browser: to /auth/login"},
               "404": problem_response("Sign-in is not configured")})
def dialog(query: DialogQuery) -> Response:
    grants = _grants()
    found = current_session()
    if found is None:
        back = f"/excel/signin?challenge={query.challenge}"
        return Response(status=302, headers={"Location": "/auth/login?next=" + quote(back)})
    _, _, person = found
    if disabled(person):
        raise Unauthorized(DISABLED)
    until = person.expires_at or utcnow()
    code = grants.start(person, query.challenge, until)
    env = Environment(loader=FileSystemLoader(addin_dir()), autoescape=select_autoescape(
        default=True))
    html = env.get_template("signin.html").render(code=code, who=person.actor,
                                                  namespace=namespace())
    return Response(html, mimetype="text/html", headers={
        "Content-Security-Policy": DIALOG_POLICY, "X-Frame-Options": "DENY",
        "Cache-Control": "no-store"})


@bp.post("/auth/addin/token")
@public
@operation("The Excel add-in's token endpoint: a code and its verifier, or a refresh token, "
           "for a short-lived access token and a new refresh token", tags=["sign-in", "excel"],
           body=TokenRequest,
           responses={"200": json_content("AddinToken"),
                      "400": problem_response("Unknown, used or expired code or refresh token"),
                      "401": problem_response("The person's sign-in has been disabled"),
                      "404": problem_response("Sign-in is not configured")})
def token(body: TokenRequest) -> Response:
    grants = _grants()
    try:
        if body.grant_type == "authorization_code":
            if not body.code or not body.code_verifier:
                raise InvalidInput("authorization_code needs code and code_verifier")
            grant = grants.redeem(body.code, body.code_verifier)
        else:
            if not body.refresh_token:
                raise InvalidInput("refresh_token: required for the refresh_token grant")
            grant = grants.refresh(body.refresh_token)
    except GrantRefused as exc:
        # RFC 6749's error code beside the problem document's fields
        return problem(400, "Invalid grant", str(exc), error="invalid_grant",
                       headers={"Cache-Control": "no-store"})
    if disabled(grant.person):
        grants.revoke(grant.refresh_token)
        raise Unauthorized(DISABLED)
    return json_response(grant.public(utcnow()), headers={"Cache-Control": "no-store"})


@bp.post("/auth/addin/revoke")
@public
@operation("The Excel add-in's sign-out: its refresh token and access token stop working",
           tags=["sign-in", "excel"], body=RevokeRequest,
           responses={"200": {"description": "Ended (or already unknown)", "content": {
               "application/json": {"schema": {"type": "object"}}}},
               "404": problem_response("Sign-in is not configured")})
def revoke(body: RevokeRequest) -> Response:
    ended = _grants().revoke(body.token)  # RFC 7009: an unknown token is no error
    return json_response({"revoked": ended})
