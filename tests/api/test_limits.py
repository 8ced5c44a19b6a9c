"""Rate limits: per key (by scope), per address, failed authentications, 429 with Retry-After,
and limits shared through Redis by several workers."""
from __future__ import annotations

import socket
import uuid
from dataclasses import replace

import pytest

from server.app import create_app
from tests.conftest import KeyClient, assert_problem, register_file

ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]


def limited_app(settings, **limits):
    return create_app(replace(settings, rate_limiting=True, **limits))


def test_per_key_limit_by_scope(settings, demo_files):
    app = limited_app(settings, rate_limits={"score": "3/minute", "read": "100/minute",
                                             "deploy": "100/minute", "admin": "100/minute"})
    svc = app.extensions["scorebridge"]
    admin = svc.keys.create("admin")[0]
    register_file(KeyClient(app.test_client(), {"deploy": admin}), "churn",
                  demo_files["artifact"], demo_files["sample"])
    first, second = svc.keys.create("score")[0], svc.keys.create("score")[0]
    client = app.test_client()
    for _ in range(3):
        assert client.post("/api/v1/models/churn/predict", json={"rows": [ROW]},
                           headers={"X-API-Key": first}).status_code == 200
    resp = client.post("/api/v1/models/churn/predict", json={"rows": [ROW]},
                       headers={"X-API-Key": first})
    assert_problem(resp, 429)
    assert int(resp.headers["Retry-After"]) >= 1
    # another key has its own budget; reads are limited separately
    assert client.post("/api/v1/models/churn/predict", json={"rows": [ROW]},
                       headers={"X-API-Key": second}).status_code == 200
    assert client.get("/api/v1/models", headers={"X-API-Key": admin}).status_code == 200
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_per_address_limit_for_anonymous_requests(settings):
    app = limited_app(settings, rate_limit_anonymous="2/minute")
    client = app.test_client()
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    resp = client.get("/openapi.json")
    assert_problem(resp, 429)
    assert "Retry-After" in resp.headers


def test_failed_authentications_are_limited(settings):
    app = limited_app(settings, auth_failure_limit="3/minute")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/models",
                          headers={"X-API-Key": "sb_000000000000_guess"}).status_code == 401
    resp = client.get("/api/v1/models", headers={"X-API-Key": "sb_000000000000_guess"})
    body = assert_problem(resp, 429, "failed authentications")
    assert int(resp.headers["Retry-After"]) >= 1 and body["type"].endswith("rate-limited")


def _redis() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis(), reason="Redis is not reachable on 127.0.0.1:6379")
def test_limits_are_shared_through_redis(settings, tmp_path):
    """Two apps (two workers) with one Redis: the budget is shared."""
    shared = dict(rate_limit_storage="redis://127.0.0.1:6379",
                  rate_limits={"score": "100/minute", "read": "3/minute",
                               "deploy": "100/minute", "admin": "100/minute"})
    one = limited_app(settings, **shared)
    two = limited_app(replace(settings, home=tmp_path / "other"), **shared) \
        if not settings.database_url else limited_app(settings, **shared)
    key = one.extensions["scorebridge"].keys.create("read", f"redis {uuid.uuid4()}")[0]
    if two.extensions["scorebridge"].registry is not one.extensions["scorebridge"].registry \
            and not settings.database_url:
        # separate SQLite files: give the second worker the same key row
        two.extensions["scorebridge"].keys.verify = one.extensions["scorebridge"].keys.verify
    try:
        codes = [app.test_client().get("/api/v1/models", headers={"X-API-Key": key}).status_code
                 for app in (one, two, one, two)]
        assert codes == [200, 200, 200, 429]
    finally:
        for app in {one, two}:
            _close_redis(app)


def _close_redis(app) -> None:
    """The limiter's Redis connections closed now: left to the garbage collector they are a
    ResourceWarning in whichever test it runs in (seen once at this test's teardown)."""
    for limiter in app.extensions.get("limiter", ()):
        client = getattr(limiter.storage, "storage", None)
        if client is not None:
            client.connection_pool.disconnect()


def test_local_memory_storage_windows_and_sweep():
    """The default storage: counts per key, a window that starts again once passed, expired
    keys swept, and no counting lost between threads."""
    import threading
    import time

    from limits import parse
    from limits.strategies import FixedWindowRateLimiter

    from server.api.limits import LocalMemoryStorage

    def timers() -> int:
        return sum(isinstance(t, threading.Timer) for t in threading.enumerate())

    before = timers()
    storage = LocalMemoryStorage()
    assert storage.incr("a", 1) == 1 and storage.incr("a", 1) == 2 and storage.get("a") == 2
    assert storage.incr("b", 60, amount=5) == 5
    assert storage.get_expiry("b") > time.time() + 50
    time.sleep(1.05)
    assert storage.get("a") == 0  # its window has passed
    storage.SWEEP_SECONDS = 0.0
    assert storage.incr("a", 1) == 1  # a new window; the sweep kept only live keys
    assert set(storage._counts) == {"a", "b"}
    storage.clear("a")
    assert storage.get("a") == 0 and storage.reset() == 1 and storage.get("b") == 0

    limiter = FixedWindowRateLimiter(storage)
    item = parse("1000/minute")
    threads = [threading.Thread(target=lambda: [limiter.hit(item, "k") for _ in range(250)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.get_window_stats(item, "k").remaining == 0
    assert not limiter.hit(item, "k")
    assert timers() <= before  # it never starts a timer thread (limits' memory storage does)


def test_memory_is_the_default_storage(settings):
    from server.api.limits import LocalMemoryStorage

    app = limited_app(settings)
    assert isinstance(app.extensions["limiter"].pop().storage, LocalMemoryStorage)
