"""API keys: created once and shown once, stored only as a SHA-256 hash, scoped.

A key looks like ``sb_<id>_<secret>``. The id (not secret) finds the row; the secret's hash is compared
in constant time. Keys are 160+ bits of randomness, so a fast hash is safe here (no password stretching
needed), and verification stays cheap on the scoring path. Verified keys are cached for a few seconds
per worker; revocation reaches every worker within that time (see :mod:`.cache`, which also bounds
how long they keep working while the database is unreachable).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import select

from ..errors import InvalidInput, NotFound
from ..registry.schema import ApiKeyRow, utcnow
from ..registry.service import Registry
from ..types.record import public_fields
from .cache import FRESH_SECONDS, MAX_STALE_SECONDS, CheckedCache

SCOPES = ("score", "read", "deploy", "admin")
# a scope grants itself and the scopes listed here
IMPLIED = {"admin": set(SCOPES), "deploy": {"deploy", "read"}, "read": {"read"},
           "score": {"score"}}
CACHE_SECONDS = FRESH_SECONDS
LAST_USED_EVERY = timedelta(minutes=1)


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = tuple(sorted({s.strip().lower() for s in items if s.strip()}))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInput(f"unknown or no scope {', '.join(unknown)}; choose from "
                           + ", ".join(SCOPES))
    return scopes


def granted(scopes: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for scope in scopes:
        out |= IMPLIED.get(scope, set())
    return out


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @cached_property  # asked on every request; the scopes never change
    def grants(self) -> set[str]:
        return granted(self.scopes)

    def public(self) -> dict[str, Any]:
        return {"id": self.key_id, **public_fields(self, "name", "scopes", "created_at",
                                                   "revoked_at", "last_used_at")}


def _info(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(key_id=row.key_id, name=row.name, scopes=tuple(row.scopes.split(",")),
                   created_at=row.created_at, revoked_at=row.revoked_at,
                   last_used_at=row.last_used_at)


class KeyStore:
    def __init__(self, registry: Registry, stale_seconds: float = MAX_STALE_SECONDS) -> None:
        self.registry = registry
        self._cache: CheckedCache[KeyInfo | None] = CheckedCache(CACHE_SECONDS, stale_seconds)

    def create(self, scopes: str | list[str], name: str = "") -> tuple[str, KeyInfo]:
        """A new key; the plain text is returned here and never again."""
        parsed = parse_scopes(scopes)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        plain = f"sb_{key_id}_{secret}"
        with self.registry.writing() as session:
            row = ApiKeyRow(key_id=key_id, name=name[:128], hashed=_hash(plain),
                            scopes=",".join(parsed), created_at=utcnow())
            session.add(row)
            session.flush()
            info = _info(row)
        return plain, info

    def list(self) -> list[KeyInfo]:
        with self.registry.reading() as session:
            return [_info(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def revoke(self, key_id: str) -> KeyInfo:
        with self.registry.writing() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
            if row is None:
                raise NotFound(f"no API key with id {key_id!r}")
            row.revoked_at = row.revoked_at or utcnow()
            info = _info(row)
        self._cache.clear()
        return info

    def verify(self, plain: str) -> KeyInfo | None:
        """The key's info when ``plain`` is a valid, unrevoked key; otherwise None."""
        if not plain or len(plain) > 128 or not plain.startswith("sb_") or plain.count("_") < 2:
            return None
        digest = _hash(plain)
        return self._cache.get(digest, lambda: self._lookup(plain.split("_", 2)[1], digest))

    def _lookup(self, key_id: str, digest: str) -> KeyInfo | None:
        info = None
        touch = False
        with self.registry.reading() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
            if row is not None and hmac.compare_digest(row.hashed, digest) \
                    and row.revoked_at is None:
                info = _info(row)
                last = row.last_used_at
                touch = last is None or utcnow() - (last if last.tzinfo else
                                                    last.replace(tzinfo=utcnow().tzinfo)) \
                    > LAST_USED_EVERY
        if info is not None and touch:
            self._touch(key_id)
        return info

    def _touch(self, key_id: str) -> None:
        try:
            with self.registry.writing() as session:
                row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
                if row is not None:
                    row.last_used_at = utcnow()
        except Exception:  # bookkeeping must never fail a request
            pass
