"""Rate limits per API key (by the route's scope) and per client address, with Flask-Limiter.

Storage is Redis when ``SCOREBRIDGE_RATE_LIMIT_STORAGE`` names one (limits shared by every worker
and host), else each worker's memory (``LocalMemoryStorage``). A request over a limit gets 429
with ``Retry-After``; failed authentications are limited per address too, so keys cannot be
guessed at speed. If the storage is unreachable, requests pass (``swallow_errors``) rather than
fail.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, g, request
from flask_limiter import Limiter
from limits import parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from ..config import Settings
from ..errors import ScoreBridgeError
from .auth import required_scope


class TooManyRequests(ScoreBridgeError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class LocalMemoryStorage(Storage):
    """Fixed-window counters in this process's memory, for when no Redis is configured.

    ``limits``' own memory storage expires counters on a timer thread that it starts anew for
    every 10 ms in which a request arrives: under load, a thread start per 10 ms and its sweep
    competing for the GIL with the requests (~0.1 ms of CPU per request, docs/performance.md).
    Here a counter whose window has passed simply starts again when next hit, and expired keys
    are swept inside a hit at most once per ``SWEEP_SECONDS``.
    """

    STORAGE_SCHEME = ["scorebridge-memory"]
    SWEEP_SECONDS = 10.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: Any) -> None:
        self._counts: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception]:  # nothing here fails as a storage would
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            if self._expires.get(key, 0.0) <= now:  # a new window
                self._counts[key] = 0
                self._expires[key] = now + expiry
            self._counts[key] += amount
            return self._counts[key]

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0) if self._expires.get(key, 0.0) > time.time() else 0

    def get_expiry(self, key: str) -> float:
        return self._expires.get(key, time.time())

    def check(self) -> bool:
        return True

    def reset(self) -> int:
        with self._lock:
            cleared = len(self._counts)
            self._counts.clear()
            self._expires.clear()
            return cleared

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)
            self._expires.pop(key, None)

    def _sweep(self, now: float) -> None:
        for key in [k for k, ends in self._expires.items() if ends <= now]:
            del self._counts[key], self._expires[key]
        self._next_sweep = now + self.SWEEP_SECONDS


def _key() -> str:
    key = getattr(g, "api_key", None)
    if key is not None and key.key_id != "anonymous":
        return f"key:{key.key_id}"
    return f"addr:{request.remote_addr}"


def install(app: Flask, settings: Settings) -> Limiter:
    """Register the limiter after authentication (so limits follow the verified key)."""
    storage = settings.rate_limit_storage or "scorebridge-memory://"

    def limit_for_request() -> str:
        view = app.view_functions.get(request.endpoint or "")
        scope = required_scope(view) if view is not None else None
        key = getattr(g, "api_key", None)
        if scope is None or key is None or key.key_id == "anonymous":
            return settings.rate_limit_anonymous
        return settings.rate_limits.get(scope, settings.rate_limit_anonymous)

    limiter = Limiter(_key, app=app, default_limits=[limit_for_request], headers_enabled=True,
                      storage_uri=storage, strategy="fixed-window", swallow_errors=True,
                      key_prefix="scorebridge", enabled=settings.rate_limiting,
                      default_limits_exempt_when=lambda: request.path in (
                          "/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"))
    failures = FixedWindowRateLimiter(storage_from_string(storage))
    failure_limit = parse(settings.auth_failure_limit)

    def auth_failed() -> None:
        """Count a failed authentication against the address; refuse once over the limit."""
        if not settings.rate_limiting:
            return
        try:
            allowed = failures.hit(failure_limit, "scorebridge-auth", request.remote_addr or "")
        except Exception:  # storage away: do not lock everyone out
            return
        if not allowed:
            reset = failures.get_window_stats(failure_limit, "scorebridge-auth",
                                              request.remote_addr or "").reset_time
            wait = max(int(reset - time.time()), 1)
            raise TooManyRequests(f"too many failed authentications from this address; retry "
                                  f"in {wait} s", headers={"Retry-After": str(wait)})

    app.extensions["scorebridge.auth_failed"] = auth_failed
    return limiter
