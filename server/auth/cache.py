"""A per-worker cache of what the database said about a credential, with a bounded life.

Answers are reused for ``fresh`` seconds, so a revocation (a key revoked, a person disabled)
reaches every worker on every host within that time. While the database is unreachable, answers
younger than ``stale`` seconds keep serving (scoring goes on through a short outage); after that,
the credential stops working until the database answers again, so a revocation made during an
outage holds within that bound.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

from sqlalchemy.exc import SQLAlchemyError

T = TypeVar("T")
FRESH_SECONDS = 2.0
MAX_STALE_SECONDS = 300.0  # at most 5 minutes on old answers during an outage


class CheckedCache(Generic[T]):
    def __init__(self, fresh: float = FRESH_SECONDS, stale: float = MAX_STALE_SECONDS,
                 max_entries: int = 10_000) -> None:
        self.fresh = fresh
        self.stale = min(stale, MAX_STALE_SECONDS)
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached answer for ``key`` while fresh; else ``load()`` (the database's answer)."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.fresh:
            return hit[1]
        try:
            value = load()
        except SQLAlchemyError:
            if hit is not None and now - hit[0] < self.stale:
                return hit[1]  # the database is away: recent answers keep working, for a while
            raise
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
