"""Browser sign-in sessions, kept on the server (the cookie is only a random token).

A session holds who signed in (the :class:`Principal` the issuer's tokens mapped to) and the
session's CSRF token; the database keeps the SHA-256 of the cookie's token, so a copy of the
database signs nobody in. Lookups are cached as keys are (:mod:`.cache`): a sign-out or an expiry
reaches every worker and host within seconds.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from ..registry.schema import WebSessionRow, utcnow
from ..registry.service import Registry
from .cache import FRESH_SECONDS, MAX_STALE_SECONDS, CheckedCache
from .principal import Principal

PENDING_SECONDS = 600  # from /auth/login to /auth/callback


def digest(token: str) -> str:
    """What the database keeps of a session's token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=utcnow().tzinfo)


def principal_data(principal: Principal) -> dict[str, Any]:
    return {"id": principal.id, "name": principal.name, "email": principal.email,
            "issuer": principal.issuer, "scopes": list(principal.scopes),
            "models": None if principal.models is None else sorted(principal.models)}


def principal_from(data: dict[str, Any], expires_at: datetime) -> Principal:
    models = data.get("models")
    return Principal(kind="person", id=data["id"], name=data.get("name", ""),
                     email=data.get("email", ""), issuer=data.get("issuer", ""),
                     scopes=tuple(data.get("scopes", ())),
                     models=None if models is None else frozenset(models), expires_at=expires_at)


class WebSessions:
    def __init__(self, registry: Registry, stale_seconds: float = MAX_STALE_SECONDS) -> None:
        self.registry = registry
        self._cache: CheckedCache[tuple[dict[str, Any], datetime] | None] = CheckedCache(
            FRESH_SECONDS, stale_seconds)

    def create(self, kind: str, data: dict[str, Any], seconds: float) -> str:
        """A new session of ``kind``; returns the token for the cookie (never stored)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self.registry.writing() as session:
            session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))
            session.add(WebSessionRow(token_hash=digest(token), kind=kind, data=data,
                                      created_at=now,
                                      expires_at=now + timedelta(seconds=seconds)))
        return token

    def get(self, token: str, kind: str) -> tuple[dict[str, Any], datetime] | None:
        """(data, expiry) of a live session of ``kind``; None for anything else."""
        if not token or len(token) > 128:
            return None
        found = self._cache.get((token, kind), lambda: self._lookup(token, kind))
        if found is None or _aware(found[1]) <= utcnow():
            return None
        return found

    def _lookup(self, token: str, kind: str) -> tuple[dict[str, Any], datetime] | None:
        with self.registry.reading() as session:
            row = session.scalar(select(WebSessionRow).where(
                WebSessionRow.token_hash == digest(token), WebSessionRow.kind == kind))
            return None if row is None else (dict(row.data), _aware(row.expires_at))

    def take(self, token: str, kind: str) -> dict[str, Any] | None:
        """A pending session's data, used once (it is deleted as it is read)."""
        if not token or len(token) > 128:
            return None
        with self.registry.writing() as session:
            row = session.scalar(select(WebSessionRow).where(
                WebSessionRow.token_hash == digest(token), WebSessionRow.kind == kind))
            if row is None:
                return None
            data, expires = dict(row.data), _aware(row.expires_at)
            session.delete(row)
        return data if expires > utcnow() else None

    def end(self, token: str) -> None:
        self.end_digest(digest(token))

    def end_digest(self, token_digest: str) -> None:
        """Ends the session whose token has this :func:`digest` (one that is only referred to)."""
        with self.registry.writing() as session:
            session.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == token_digest))
        self._cache.clear()
