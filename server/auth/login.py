"""Browser sign-in as an OpenID Connect relying party: the authorization code flow with PKCE.

:meth:`WebLogin.start` makes the state, nonce and PKCE verifier that the pending session keeps and
the issuer's authorization URL; :meth:`WebLogin.finish` checks the state, redeems the code at the
token endpoint (with the verifier and the client's secret), checks the ID token (issuer, the client
as audience, nonce) and maps the person to scopes. The scopes come from the access token when the
issuer minted one for ScoreBridge's audience (the same mapping as bearer tokens), else from the ID
token's claims (roles and groups through the mapping).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

import requests

from ..errors import Unauthorized, Unavailable
from .principal import Principal
from .tokens import TokenRejected, TokenVerifier, looks_like_jwt


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class WebLogin:
    TIMEOUT = 10.0

    def __init__(self, verifier: TokenVerifier, client_id: str, client_secret: str,
                 scopes: str) -> None:
        self.verifier = verifier
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes

    def start(self, redirect_uri: str, next_path: str) -> tuple[dict[str, Any], str]:
        """(what the pending session keeps, the URL to send the browser to)."""
        pending = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                   "verifier": secrets.token_urlsafe(48), "next": next_path,
                   "redirect_uri": redirect_uri}
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": redirect_uri, "scope": self.scopes, "state": pending["state"],
                  "nonce": pending["nonce"], "code_challenge": _s256(pending["verifier"]),
                  "code_challenge_method": "S256",
                  "resource": self.verifier.config.audiences[0]}
        endpoint = self.verifier.discovery().get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise Unavailable("the issuer's discovery document names no authorization_endpoint")
        return pending, f"{endpoint}?{urlencode(params)}"

    def finish(self, pending: dict[str, Any], code: str, state: str) -> Principal:
        if not hmac.compare_digest(state.encode(), str(pending["state"]).encode()):
            raise Unauthorized("the sign-in response does not belong to this browser's sign-in")
        endpoint = self.verifier.discovery().get("token_endpoint")
        try:
            resp = requests.post(str(endpoint), timeout=self.TIMEOUT, allow_redirects=False, data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": pending["redirect_uri"], "code_verifier": pending["verifier"],
                "resource": self.verifier.config.audiences[0]},
                auth=(self.client_id, self.client_secret))
            tokens = resp.json() if resp.headers.get("Content-Type", "").startswith(
                "application/json") else {}
        except (requests.RequestException, ValueError):
            raise Unavailable("the identity provider's token endpoint could not be reached") from None
        if resp.status_code != 200 or not isinstance(tokens.get("id_token"), str):
            error = str(tokens.get("error", f"HTTP {resp.status_code}"))[:60]
            raise Unauthorized(f"the identity provider refused the sign-in ({error})")
        try:
            identity = self.verifier.decode(tokens["id_token"], (self.client_id,))
        except TokenRejected as exc:
            raise Unauthorized(f"the ID token is not valid: {exc.detail}") from None
        if not hmac.compare_digest(str(identity.get("nonce", "")).encode(),
                                   str(pending["nonce"]).encode()):
            raise Unauthorized("the ID token was not issued for this sign-in (nonce)")
        access = tokens.get("access_token")
        person = self.verifier.principal(identity)
        if isinstance(access, str) and looks_like_jwt(access):
            try:
                person = self.verifier.verify(access)
            except TokenRejected:
                pass  # not for our audience: the ID token's claims decide
        if person.id != identity["sub"]:
            raise Unauthorized("the access and ID tokens name different people")
        name = person.name or str(identity.get("name") or identity.get("preferred_username") or "")
        email = person.email or str(identity.get("email") or "")
        return Principal(kind="person", id=person.id, name=name[:200], email=email[:200],
                         issuer=person.issuer, scopes=person.scopes, models=person.models,
                         expires_at=person.expires_at)
