"""Continuous deployment against real gunicorn servers with several workers."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from server.app import build_registry
from server.config import Settings
from tests.conftest import churn_rows, jsonable
from tests.live import env_for, run_cli, serve, setup_cli

pytestmark = pytest.mark.slow
WORKERS = 3


def _start(tmp_path, env, workers=WORKERS):
    return serve(env, workers=workers, threads=4)


def _upload(server, key, demo_files):
    with open(demo_files["artifact"], "rb") as art, open(demo_files["sample"], "rb") as sample:
        resp = requests.post(f"{server.url}/api/v1/models/churn/versions",
                             headers={"X-API-Key": key},
                             files={"file": ("churn.skops", art), "sample": ("s.csv", sample)},
                             timeout=60)
    assert resp.status_code == 201, resp.text
    return resp.json()["version"]


def _worker_views(server, seconds: float) -> dict[str, int]:
    """worker id -> production version it serves, sampled over new connections."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = requests.get(f"{server.url}/readyz", timeout=5).json()
        seen[body["worker"]] = body["models"]["churn"]
    return seen


def test_rollout_under_load_reaches_every_worker(tmp_path, demo_files, database_url):
    """Several gunicorn workers sharing one registry (SQLite, or PostgreSQL as many hosts would)."""
    home = tmp_path / "home"
    env = env_for(home, SCOREBRIDGE_DEPLOY_REFRESH_SECONDS="0.5", SCOREBRIDGE_TICK_SECONDS="0.2",
                  SCOREBRIDGE_DATABASE_URL=database_url)
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), env=env)
    setup_cli("policy", "churn", "auto", "--max-latency-ms", "60000", env=env)
    key = setup_cli("keys", "create", "--scope", "admin", env=env).stdout.strip()
    server = _start(tmp_path, env)
    results: list[tuple[float, float, int, int]] = []  # start, end, status, version
    stop = threading.Event()
    body = {"rows": jsonable(churn_rows(3))}

    def load():
        session = requests.Session()
        for _ in range(20_000):  # bounded; stopped by the event long before
            if stop.is_set():
                return
            start = time.monotonic()
            try:
                resp = session.post(f"{server.url}/api/v1/models/churn/predict", json=body,
                                    headers={"X-API-Key": key}, timeout=30)
                status, version = resp.status_code, int(resp.headers.get("X-Model-Version", 0))
            except requests.RequestException:
                status, version = 0, 0
            results.append((start, time.monotonic(), status, version))

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        assert _worker_views(server, 1.0) and set(_worker_views(server, 1.0).values()) == {1}
        v2 = _upload(server, key, demo_files)
        registry = build_registry(Settings(home=home, database_url=database_url))
        deadline = time.monotonic() + 30
        while registry.get_version("churn").version != v2 and time.monotonic() < deadline:
            time.sleep(0.05)
        promoted_at = time.monotonic()
        assert registry.get_version("churn").version == v2
        time.sleep(2.0)
        views = _worker_views(server, 2.0)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        server.stop()
    statuses = Counter(status for _, _, status, _ in results)
    assert statuses == Counter({200: len(results)}), statuses  # zero failed requests
    assert len(results) > 100
    # nothing answered v2 before the promotion; nothing started 2 s after it answered v1
    assert all(v == 1 for start, end, _, v in results if end < promoted_at - 5)
    late_v1 = [r for r in results if r[0] > promoted_at + 2.0 and r[3] == 1]
    assert not late_v1, f"{len(late_v1)} requests answered by v1 more than 2 s after promotion"
    assert {v for *_, v in results if _[0] > promoted_at + 2.0} == {v2}
    assert len(views) >= 2 and set(views.values()) == {v2}, views


def test_sigkill_during_promotion_leaves_a_consistent_registry(tmp_path, demo_files):
    home = tmp_path / "home"
    env = env_for(home)
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), env=env)
    setup_cli("policy", "churn", "manual", env=env)
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", env=env)
    registry = build_registry(Settings(home=home))
    # a promotion killed just before its commit: production stays at the old version
    killed = run_cli("promote", "churn", "2", env={**env, "SCOREBRIDGE_FAULTS":
                                                   "promoted.before_commit"}, check=False)
    assert killed.returncode == -9
    assert registry.get_version("churn").version == 1
    assert not [e for e in registry.events("churn") if e.kind == "promoted" and e.version == 2]
    # and the same promotion, not killed, goes through
    run_cli("promote", "churn", "2", env=env)
    assert registry.get_version("churn").version == 2


def test_sigkill_during_registration_records_nothing(tmp_path, demo_files):
    home = tmp_path / "home"
    env = env_for(home)
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), env=env)
    killed = run_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
                     str(demo_files["sample"]), check=False,
                     env={**env, "SCOREBRIDGE_FAULTS": "registered.before_commit"})
    assert killed.returncode == -9
    registry = build_registry(Settings(home=home))
    assert [v.version for v in registry.get_model("churn").versions] == [1]
    assert [e.kind for e in registry.events("churn")].count("registered") == 1
    # the artifact it stored first is unreferenced (garbage collection removes it later), and
    # the same registration, not killed, gets the next number
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", env=env)
    assert [v.version for v in registry.get_model("churn").versions] == [1, 2]


def test_server_killed_mid_promotion_restarts_consistent(tmp_path, demo_files):
    home = tmp_path / "home"
    env = env_for(home, SCOREBRIDGE_CLAIM_TIMEOUT_SECONDS="2", SCOREBRIDGE_TICK_SECONDS="0.2")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), env=env)
    # this test is about crashes, not speed: a loaded machine must not fail the latency gate
    setup_cli("policy", "churn", "auto", "--max-latency-ms", "60000", env=env)
    key = setup_cli("keys", "create", "--scope", "admin", env=env).stdout.strip()
    registry = build_registry(Settings(home=home))
    faulty = _start(tmp_path, {**env, "SCOREBRIDGE_FAULTS": "promoted.before_commit"}, workers=2)
    try:
        v2 = _upload(faulty, key, demo_files)
        deadline = time.monotonic() + 30
        while "was sent SIGKILL" not in faulty.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "was sent SIGKILL" in faulty.output()  # a worker died inside the promotion
        # whatever state the kill left: production is exactly one of the versions, never none
        assert registry.get_version("churn").version in (1, v2)
        assert registry.get_version("churn").version == 1
    finally:
        faulty.stop()
    server = _start(tmp_path, env, workers=2)
    try:
        deadline = time.monotonic() + 60
        while registry.get_version("churn").version != v2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert registry.get_version("churn").version == v2, registry.get_version("churn", v2)
        gated = [e for e in registry.events("churn") if e.kind == "gates_passed" and e.version == v2]
        promoted = [e for e in registry.events("churn") if e.kind == "promoted" and e.version == v2]
        assert len(promoted) == 1
        assert len(gated) >= 1
    finally:
        server.stop()
