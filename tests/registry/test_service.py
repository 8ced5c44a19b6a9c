"""The registry on its own: versions, aliases, rollback, atomicity, concurrency, migrations."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.app import build_registry
from server.errors import Conflict, InvalidInput, NotFound
from server.registry.database import current_revision, head_revision
from server.registry.schema import VersionRow
from server.registry.service import NewVersion, validate_name

SIG = {"inputs": [{"name": "x", "type": "number"}],
       "output": {"kind": "regression", "type": "number"}}


@pytest.fixture
def registry(settings):
    reg = build_registry(settings)
    yield reg
    reg.engine.dispose()


def _add(registry, name="m", content=b"artifact", tmp: Path | None = None):
    import hashlib
    import tempfile

    sha = hashlib.sha256(content).hexdigest()
    with tempfile.NamedTemporaryFile(delete=False) as fh:
        fh.write(content)
    key = registry.store.put(Path(fh.name), sha)
    gates = [{"gate": "smoke", "passed": True, "detail": "test", "data": {}}]
    return registry.add_version(name, NewVersion(sha256=sha, format="skops",
                                                 size_bytes=len(content), signature=SIG,
                                                 gates=gates),
                                key, actor="test")


def test_schema_is_at_head_and_upgrade_is_idempotent(registry, settings):
    assert current_revision(registry.engine) == head_revision() == "0014_traffic_by_user"
    build_registry(settings).engine.dispose()  # second start: nothing to do, nothing breaks


def test_pool_holds_every_thread_of_a_worker(settings):
    """Each request thread and the background threads can hold a connection at once, so no
    thread waits for the pool (nor times out) when all of them touch the registry."""
    from dataclasses import replace

    registry = build_registry(replace(settings, threads=24))
    try:
        pool = registry.engine.pool
        assert pool.size() + pool._max_overflow == 24 + 4
        held = [registry.engine.connect() for _ in range(28)]  # none of them waits
        for conn in held:
            conn.close()
    finally:
        registry.engine.dispose()


def test_sqlite_uses_wal(registry):
    if registry.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with registry.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_versions_number_per_model_and_first_is_production(registry):
    assert _add(registry, "a").version == 1
    assert _add(registry, "a", b"2").version == 2
    assert _add(registry, "b").version == 1
    assert registry.get_model("a").aliases == {"production": 1}
    assert registry.get_version("a").version == 1
    assert registry.get_version("a", 2).aliases == []


def test_same_content_shares_one_file(registry):
    v1, v2 = _add(registry, "a"), _add(registry, "a")
    assert v1.artifact == v2.artifact and v1.sha256 == v2.sha256


def test_aliases_and_rollback_chain(registry):
    for content in (b"1", b"2", b"3"):
        _add(registry, "m", content)
    registry.set_alias("m", "production", 2, actor="t")
    registry.set_alias("m", "production", 3, actor="t")
    registry.set_alias("m", "staging", 1, actor="t")
    assert registry.rollback("m", actor="t").version == 2
    assert registry.rollback("m", actor="t").version == 1
    with pytest.raises(Conflict):
        registry.rollback("m", actor="t")
    assert registry.get_model("m").aliases == {"production": 1, "staging": 1}
    # promoting a rolled-back version again clears its flag
    assert registry.set_alias("m", "production", 3, actor="t").rolled_back is False


def test_not_found_and_validation(registry):
    with pytest.raises(NotFound):
        registry.get_model("nope")
    _add(registry, "m")
    with pytest.raises(NotFound):
        registry.set_alias("m", "production", 5, actor="t")
    with pytest.raises(InvalidInput):
        registry.set_alias("m", "Prod!", 1, actor="t")
    for bad in ("", "A", "1abc", "a" * 65, "a/b", "../x", "a b", "ä"):
        with pytest.raises(InvalidInput):
            validate_name(bad)


def _at_once(task, n: int = 8) -> list[Exception]:
    """``task(i)`` for i in 0..n-1 on n threads released together; the exceptions they raised."""
    barrier = threading.Barrier(n)
    errors: list[Exception] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            task(i)
        except Exception as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_registrations_get_distinct_numbers(registry):
    assert not _at_once(lambda i: _add(registry, "busy", f"{i}".encode()))
    assert sorted(v.version for v in registry.get_model("busy").versions) == list(range(1, 9))


def test_a_lease_goes_to_one_holder_at_a_time(registry):
    import time

    assert registry.claim_lease("drift", "worker-a", 60)
    assert not registry.claim_lease("drift", "worker-b", 60)
    assert not registry.claim_lease("drift", "worker-a", 60)  # held: not again before it ends
    assert registry.claim_lease("housekeeping", "worker-b", 60)  # leases are per task
    assert registry.claim_lease("gc", "worker-a", 0.2)
    time.sleep(0.3)
    assert registry.claim_lease("gc", "worker-b", 60)  # expired: the next asker takes it


def test_of_many_workers_asking_at_once_exactly_one_gets_the_lease(registry):
    won: list[str] = []

    def ask(i: int) -> None:
        if registry.claim_lease("drift", f"worker-{i}", 60):
            won.append(f"worker-{i}")

    assert not _at_once(ask) and len(won) == 1


def test_an_installation_value_is_chosen_once_by_many_workers_at_once(registry):
    """The Excel add-in's id: every worker asks on its first manifest; all get the first one
    stored, and it is never replaced."""
    got: list[str] = []
    assert not _at_once(lambda i: got.append(registry.installation_value("excel.addin_id",
                                                                         lambda: f"id-{i}")))
    assert len(got) == 8 and len(set(got)) == 1
    assert registry.installation_value("excel.addin_id", lambda: "another") == got[0]
    assert registry.installation_value("other", lambda: "x") == "x"  # values are per name


def test_failed_record_leaves_no_version_and_garbage_is_collected(registry, monkeypatch):
    _add(registry, "m")

    def broken(*a, **k):
        raise RuntimeError("crash between store and database")

    monkeypatch.setattr(registry, "_event", broken)
    with pytest.raises(RuntimeError):
        _add(registry, "m", b"orphan")
    monkeypatch.undo()
    with registry.reading() as session:
        assert session.scalar(select(func.count()).select_from(VersionRow)) == 1
    removed = registry.store.collect_garbage(registry.referenced_artifacts(), min_age_seconds=0)
    assert len(removed) == 1
    assert registry.store.path(registry.get_version("m").artifact).exists()


def test_events_and_change_marker(registry):
    before = registry.change_marker()
    _add(registry, "m")
    assert registry.change_marker() > before
    kinds = [e.kind for e in registry.events("m")]
    assert kinds == ["promoted", "gates_passed", "registered", "model_created"]
    assert registry.events("other") == []


def test_models_and_events_cut_to_some_models(registry):
    """What a caller limited to some models is shown: their models and events, none of another
    model nor of none (a key's creation); an empty set shows nothing."""
    for name in ("a", "b", "c"):
        _add(registry, name)
    registry.record_event(None, "key_created", actor="test")
    assert [m.name for m in registry.list_models(only={"a", "c"})] == ["a", "c"]
    assert [m.name for m in registry.list_models()] == ["a", "b", "c"]
    assert registry.list_models(only=frozenset()) == []
    cut = registry.events(limit=1000, only={"a", "c"})
    assert cut and {e.model for e in cut} == {"a", "c"}
    assert [e.id for e in cut] == [e.id for e in registry.events(limit=1000)
                                   if e.model in ("a", "c")]
    assert "key_created" in {e.kind for e in registry.events(limit=1000)}
    assert registry.events("b", only={"a"}) == [] and registry.events(only=()) == []
    assert len(registry.events(limit=2, only={"b"})) == 2  # the limit counts b's events only


def test_store_refuses_keys_outside_its_root(registry):
    with pytest.raises(ValueError):
        registry.store.path("../../etc/passwd")
