"""People cut off here: a subject of the configured issuer whose sign-in tokens are refused.

An issuer's access tokens stay valid until they expire (an hour, often) even after the person is
disabled at the issuer. Disabling the person here refuses their tokens on every worker and host
within :data:`~.cache.FRESH_SECONDS`, as revoking a key does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from ..errors import InvalidInput, NotFound
from ..registry.schema import DisabledPersonRow, utcnow
from ..registry.service import Registry
from ..types.record import public_fields
from .cache import FRESH_SECONDS, MAX_STALE_SECONDS, CheckedCache


@dataclass(frozen=True)
class DisabledPerson:
    issuer: str
    subject: str
    reason: str
    disabled_by: str
    disabled_at: datetime

    def public(self) -> dict[str, Any]:
        return public_fields(self, "issuer", "subject", "reason", "disabled_by", "disabled_at")


def _info(row: DisabledPersonRow) -> DisabledPerson:
    return DisabledPerson(issuer=row.issuer, subject=row.subject, reason=row.reason,
                          disabled_by=row.disabled_by, disabled_at=row.disabled_at)


class People:
    def __init__(self, registry: Registry, stale_seconds: float = MAX_STALE_SECONDS) -> None:
        self.registry = registry
        self._cache: CheckedCache[bool] = CheckedCache(FRESH_SECONDS, stale_seconds)

    def disable(self, issuer: str, subject: str, *, reason: str = "",
                actor: str) -> DisabledPerson:
        if not issuer or not subject or len(subject) > 255:
            raise InvalidInput("a person is named by the issuer and a subject of 1 to 255 "
                               "characters")
        with self.registry.writing() as session:
            row = session.scalar(select(DisabledPersonRow).where(
                DisabledPersonRow.issuer == issuer, DisabledPersonRow.subject == subject))
            if row is None:
                row = DisabledPersonRow(issuer=issuer, subject=subject, reason=reason[:500],
                                        disabled_by=actor[:255], disabled_at=utcnow())
                session.add(row)
                session.flush()
            info = _info(row)
        self._cache.clear()
        return info

    def enable(self, issuer: str, subject: str) -> None:
        with self.registry.writing() as session:
            gone = session.execute(delete(DisabledPersonRow).where(
                DisabledPersonRow.issuer == issuer, DisabledPersonRow.subject == subject))
            if not getattr(gone, "rowcount", 0):
                raise NotFound(f"{subject[:64]!r} is not disabled")
        self._cache.clear()

    def list(self) -> list[DisabledPerson]:
        with self.registry.reading() as session:
            return [_info(r) for r in session.scalars(
                select(DisabledPersonRow).order_by(DisabledPersonRow.id))]

    def is_disabled(self, issuer: str, subject: str) -> bool:
        return self._cache.get((issuer, subject), lambda: self._lookup(issuer, subject))

    def _lookup(self, issuer: str, subject: str) -> bool:
        with self.registry.reading() as session:
            return session.scalar(select(DisabledPersonRow.id).where(
                DisabledPersonRow.issuer == issuer, DisabledPersonRow.subject == subject)) \
                is not None
