"""Per-worker traffic counters: requests, errors, rows and latency per model version, and
requests, errors and rows per model, hour and caller (traffic by user: counts, never payloads).

Counting happens in memory on the scoring path (a lock and a few additions); the deployment worker
flushes the counters to the registry every second, where canary decisions, automatic rollback and
the dashboard read them summed over every worker and host.

It belongs to the scoring package because the scorer fills it on every request; the readers
(deployment worker, reports, the deployment API) sit above and import it downwards.
"""
from __future__ import annotations

import bisect
import threading
import time
from datetime import datetime, timezone
from typing import Any

from ..registry.deployments import Traffic, UserBuckets, UserTraffic

BUCKET_EDGES_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
MAX_PENDING_KEYS = 10_000


class TrafficRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, int, datetime], Traffic] = {}
        self._users: UserBuckets = {}
        self._minute: tuple[int, datetime, datetime] = (-1, datetime.min, datetime.min)

    def _current_minute(self) -> datetime:
        """The minute bucket now, as a datetime built once per minute (not per request: building
        a timezone-aware datetime costs more than the rest of the counting; lock held)."""
        epoch_minute = int(time.time()) // 60
        if epoch_minute != self._minute[0]:
            self._minute = (epoch_minute, datetime.fromtimestamp(epoch_minute * 60, timezone.utc),
                            datetime.fromtimestamp(epoch_minute // 60 * 3600, timezone.utc))
        return self._minute[1]

    def _count_caller(self, model: str, caller: tuple[str, str], rows: int, error: bool) -> None:
        """One request in the caller's hour bucket (lock held, minute current)."""
        key = (model, self._minute[2], caller[0])
        u = self._users.get(key)
        if u is None:
            u = self._users[key] = UserTraffic(name=caller[1])
        u.requests += 1
        u.errors += int(error)
        u.rows += rows

    def _bucket(self, model: str, version: int) -> Traffic:
        key = (model, version, self._current_minute())
        t = self._data.get(key)
        if t is None:
            t = self._data[key] = Traffic(buckets=[0] * (len(BUCKET_EDGES_MS) + 1))
        return t

    def record(self, model: str, version: int, seconds: float, rows: int, error: bool,
               caller: tuple[str, str] | None = None) -> None:
        """Count one request; ``caller`` (id, display name) also counts it for that caller."""
        with self._lock:
            if len(self._data) > MAX_PENDING_KEYS:  # the database has been away for long
                return
            t = self._bucket(model, version)
            t.requests += 1
            t.errors += int(error)
            t.rows += rows
            t.latency_sum += seconds
            t.buckets[bisect.bisect_left(BUCKET_EDGES_MS, seconds * 1000)] += 1
            if caller and caller[0] and len(self._users) <= MAX_PENDING_KEYS:
                self._count_caller(model, caller, rows, error)

    def record_shadow(self, model: str, version: int, compared: int, agreed: int) -> None:
        with self._lock:
            t = self._bucket(model, version)
            t.shadow_compared += compared
            t.shadow_agreed += agreed

    def drain(self) -> dict[tuple[str, int, datetime], Traffic]:
        with self._lock:
            data, self._data = self._data, {}
        return data

    def drain_users(self) -> UserBuckets:
        with self._lock:
            users, self._users = self._users, {}
        return users

    def restore_users(self, users: UserBuckets) -> None:
        """Put back per-caller counts that could not be flushed."""
        with self._lock:
            _merge(self._users, users)

    def restore(self, data: dict[tuple[str, int, datetime], Traffic]) -> None:
        """Put back counters that could not be flushed, so nothing is lost while the DB is away."""
        with self._lock:
            _merge(self._data, data)


def percentile_ms(buckets: list[int], q: float) -> float | None:
    """An upper bound of the q-quantile latency from bucket counts."""
    total = sum(buckets)
    if not total:
        return None
    target = q * total
    seen = 0
    for i, count in enumerate(buckets):
        seen += count
        if seen >= target:
            return float(BUCKET_EDGES_MS[i]) if i < len(BUCKET_EDGES_MS) else float("inf")
    return float("inf")


def _merge(into: dict[Any, Any], counts: dict[Any, Any]) -> None:
    """Add ``counts`` (buckets with an ``add``) into ``into``, bucket by bucket."""
    for key, bucket in counts.items():
        if key in into:
            into[key].add(bucket)
        else:
            into[key] = bucket
