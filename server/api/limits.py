"""Rate limits per API key (by the route's scope) and per client address, with Flask-Limiter.

Storage is Redis when ``SCOREBRIDGE_RATE_LIMIT_STORAGE`` names one (limits shared by every worker
and host), else each worker's memory. A request over a limit gets 429 with ``Retry-After``; failed
authentications are limited per address too, so keys cannot be guessed at speed. If the storage is
unreachable, requests pass (``swallow_errors``) rather than fail.
"""
from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import Limiter
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from ..config import Settings
from ..errors import ScoreBridgeError
from .auth import required_scope


class TooManyRequests(ScoreBridgeError):
    status, slug, title = 429, "rate-limited", "Too many requests"


def _key() -> str:
    key = getattr(g, "api_key", None)
    if key is not None and key.key_id != "anonymous":
        return f"key:{key.key_id}"
    return f"addr:{request.remote_addr}"


def install(app: Flask, settings: Settings) -> Limiter:
    """Register the limiter after authentication (so limits follow the verified key)."""
    storage = settings.rate_limit_storage or "memory://"

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
