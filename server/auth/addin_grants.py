"""Sign-in for the Excel add-in: short-lived access tokens and rotating refresh tokens, given for
a browser sign-in.

The add-in opens the server's own sign-in page in an Office dialog (any issuer, the browser's
authorization code flow with PKCE). The dialog's last page gets a one-time code bound to the
challenge the task pane chose (PKCE again, RFC 7636, between the pane and the server), and hands
it to the pane through Office; the pane redeems it with its verifier. The token endpoint is
shaped like OAuth 2.0's (``authorization_code`` and ``refresh_token`` grants).

Nothing here is a secret in the workbook: the access token lives in the add-in's memory, the
refresh token in the add-in's storage on the computer. Both are random; the database keeps their
SHA-256 (as :mod:`.sessions` does for browser sessions), so a copy of it signs nobody in. A
refresh token is used once (each refresh gives a new pair and ends the old access token) and
lives no longer than the browser sign-in would; signing out ends both.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..registry.schema import utcnow
from .principal import Principal
from .sessions import WebSessions, digest, principal_data, principal_from

ACCESS_PREFIX = "sbt_"     # told apart from API keys (sb_...) and JWTs by its form
REFRESH_PREFIX = "sbr_"
CODE_SECONDS = 120         # from the dialog's last page to the pane's redeeming it
ACCESS_SECONDS = 900       # a stolen access token is good for 15 minutes at most
CHALLENGE_LENGTH = 43      # base64url of a SHA-256, unpadded


class GrantRefused(Exception):
    """The code or refresh token is unknown, used, expired, or not for this verifier."""


@dataclass(frozen=True)
class Grant:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    person: Principal

    def public(self, now: datetime) -> dict[str, Any]:
        """The token response (RFC 6749 section 5.1, plus who signed in)."""
        return {"access_token": self.access_token, "token_type": "Bearer",
                "expires_in": max(0, int((self.access_expires_at - now).total_seconds())),
                "refresh_token": self.refresh_token,
                "refresh_expires_in": max(0, int((self.refresh_expires_at - now).total_seconds())),
                "who": {"actor": self.person.actor, "name": self.person.name or None,
                        "email": self.person.email or None}}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=utcnow().tzinfo)


class AddinGrants:
    def __init__(self, sessions: WebSessions) -> None:
        self.sessions = sessions

    def start(self, person: Principal, challenge: str, signed_in_until: datetime) -> str:
        """A one-time code for the person a browser session names, bound to ``challenge``."""
        return self.sessions.create("addin-code", {
            "person": principal_data(person), "challenge": challenge,
            "until": _aware(signed_in_until).isoformat()}, CODE_SECONDS)

    def redeem(self, code: str, verifier: str) -> Grant:
        data = self.sessions.take(code, "addin-code")
        if data is None:
            raise GrantRefused("the sign-in code is unknown, used or expired: sign in again")
        if not hmac.compare_digest(s256(verifier).encode(), str(data["challenge"]).encode()):
            raise GrantRefused("the code verifier does not match the sign-in's challenge")
        return self._grant(data["person"], datetime.fromisoformat(data["until"]))

    def refresh(self, refresh_token: str) -> Grant:
        token = refresh_token.removeprefix(REFRESH_PREFIX)
        data = self.sessions.take(token, "addin-refresh")
        if data is None:
            raise GrantRefused("the refresh token is unknown, used or expired: sign in again "
                               "in the task pane")
        until = datetime.fromisoformat(data["until"])
        if until <= utcnow():
            raise GrantRefused("the sign-in has ended: sign in again in the task pane")
        self.sessions.end_digest(data["access"])  # the old access token stops at once
        return self._grant(data["person"], until)

    def verify(self, access_token: str) -> Principal | None:
        found = self.sessions.get(access_token.removeprefix(ACCESS_PREFIX), "addin")
        return None if found is None else principal_from(found[0]["person"], found[1])

    def revoke(self, refresh_token: str) -> bool:
        """Sign-out: the refresh token and the access token it came with stop working."""
        data = self.sessions.take(refresh_token.removeprefix(REFRESH_PREFIX), "addin-refresh")
        if data is None:
            return False
        self.sessions.end_digest(data["access"])
        return True

    def _grant(self, person: dict[str, Any], until: datetime) -> Grant:
        now = utcnow()
        until = _aware(until)
        access_until = min(now + timedelta(seconds=ACCESS_SECONDS), until)
        seconds = max(1.0, (access_until - now).total_seconds())
        access = self.sessions.create("addin", {"person": person}, seconds)
        refresh = self.sessions.create("addin-refresh", {
            "person": person, "access": digest(access), "until": until.isoformat()},
            max(1.0, (until - now).total_seconds()))
        return Grant(ACCESS_PREFIX + access, now + timedelta(seconds=seconds),
                     REFRESH_PREFIX + refresh, until,
                     principal_from(person, now + timedelta(seconds=seconds)))
