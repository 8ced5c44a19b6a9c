"""Traffic counters: recording, percentiles, and nothing lost when a flush fails."""
from __future__ import annotations

from server.registry.deployments import Traffic
from server.scoring.traffic import BUCKET_EDGES_MS, TrafficRecorder, percentile_ms


def test_record_and_drain():
    rec = TrafficRecorder()
    rec.record("m", 1, 0.004, rows=10, error=False)
    rec.record("m", 1, 0.030, rows=5, error=True)
    rec.record_shadow("m", 2, compared=4, agreed=3)
    data = rec.drain()
    assert rec.drain() == {}
    by_version = {k[1]: t for k, t in data.items()}
    t = by_version[1]
    assert (t.requests, t.errors, t.rows) == (2, 1, 15)
    assert t.error_rate == 0.5 and abs(t.mean_latency - 0.017) < 1e-9
    assert sum(t.buckets) == 2 and len(t.buckets) == len(BUCKET_EDGES_MS) + 1
    assert by_version[2].agreement == 0.75


def test_restore_merges_counts():
    rec = TrafficRecorder()
    rec.record("m", 1, 0.001, rows=1, error=False)
    failed_flush = rec.drain()
    rec.record("m", 1, 0.001, rows=1, error=False)
    rec.restore(failed_flush)
    (t,) = rec.drain().values()
    assert t.requests == 2 and t.rows == 2 and sum(t.buckets) == 2


def test_percentiles_and_add():
    buckets = [0] * (len(BUCKET_EDGES_MS) + 1)
    buckets[2] = 90  # <= 5 ms
    buckets[6] = 10  # <= 100 ms
    assert percentile_ms(buckets, 0.5) == 5.0
    assert percentile_ms(buckets, 0.95) == 100.0
    assert percentile_ms([0, 0], 0.5) is None
    total = Traffic(requests=1, buckets=[1]).add(Traffic(requests=2, buckets=[0, 2]))
    assert total.requests == 3 and total.buckets == [1, 2]


def test_counts_go_to_the_minute_they_happen_in(monkeypatch):
    """Buckets are keyed by the UTC minute (aware, seconds cut off), a new one each minute."""
    from datetime import datetime, timezone

    from server.scoring import traffic

    rec = TrafficRecorder()
    clock = [datetime(2026, 3, 1, 12, 30, 59, 900000, tzinfo=timezone.utc).timestamp()]
    monkeypatch.setattr(traffic.time, "time", lambda: clock[0])
    rec.record("m", 1, 0.001, rows=1, error=False)
    clock[0] += 0.2  # 12:31:00.1
    rec.record("m", 1, 0.001, rows=2, error=False)
    rec.record("m", 1, 0.001, rows=3, error=False)
    minutes = {k[2]: t.rows for k, t in rec.drain().items()}
    assert minutes == {datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc): 1,
                       datetime(2026, 3, 1, 12, 31, tzinfo=timezone.utc): 5}
