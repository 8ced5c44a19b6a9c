"""Who is calling: an API key, a person signed in with the organisation's identity provider, or
nobody (auth off). One type for both credentials, so scope checks, rate limits and the audit trail
treat a key and a person alike."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from .keys import SCOPES, KeyInfo, granted

Kind = Literal["key", "person", "anonymous"]


@dataclass(frozen=True)
class Principal:
    kind: Kind
    id: str                             # the key's id, or the token's subject
    name: str = ""                      # the key's label, or the person's display name
    scopes: tuple[str, ...] = ()
    email: str = ""
    issuer: str = ""
    models: frozenset[str] | None = None  # None: every model; else only these (per-model access)
    expires_at: datetime | None = None

    @cached_property
    def grants(self) -> set[str]:
        return granted(self.scopes)

    @property
    def key_id(self) -> str:
        """A stable id for rate limits and caches (a person's is ``user:<subject>``)."""
        return self.id if self.kind != "person" else f"user:{self.id}"

    @property
    def actor(self) -> str:
        """How events name this caller: ``key:<id> (name)`` or ``user:<subject> (name)``."""
        if self.kind == "anonymous":
            return "anonymous"
        label = self.name or self.email
        prefix = "key" if self.kind == "key" else "user"
        return f"{prefix}:{self.id}" + (f" ({label})" if label else "")

    @property
    def caller(self) -> tuple[str, str]:
        """How traffic by user names this caller: (``key:<id>`` or ``user:<subject>``, or
        ``anonymous``; the display name)."""
        if self.kind == "anonymous":
            return "anonymous", ""
        prefix = "key" if self.kind == "key" else "user"
        return f"{prefix}:{self.id}", self.name or self.email

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models or "admin" in self.grants

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "email": self.email or None,
                "issuer": self.issuer or None, "scopes": list(self.scopes),
                "grants": sorted(self.grants),
                "models": None if self.models is None else sorted(self.models),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "actor": self.actor}


def from_key(key: KeyInfo) -> Principal:
    return Principal(kind="key", id=key.key_id, name=key.name, scopes=key.scopes)


ANONYMOUS = Principal(kind="anonymous", id="anonymous", name="auth off", scopes=SCOPES)
