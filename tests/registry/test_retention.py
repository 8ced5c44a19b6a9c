"""Retention of the tables that grow with traffic: per-minute traffic rolled into hours and then
removed, old drift snapshots and finished webhook deliveries removed, each sweep bounded."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from server.registry.retention import HOURLY, RetentionPolicy, sweep
from server.registry.schema import DriftRow, EventRow, TrafficRow, WebhookDeliveryRow

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)


def _traffic(minute: datetime, worker: str, requests: int, buckets: list[int]) -> TrafficRow:
    return TrafficRow(model_name="churn", version=1, worker=worker, minute=minute,
                      requests=requests, errors=1, rows=requests * 10, latency_sum=0.5 * requests,
                      latency_buckets=buckets, shadow_compared=2, shadow_agreed=1)


def _count(registry, table, *where) -> int:
    with registry.reading() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def test_old_minutes_roll_up_into_hours_keeping_every_total(services):
    registry, deployments = services.registry, services.worker.deployments
    old = NOW - timedelta(days=10)
    hour = old.replace(minute=0, second=0, microsecond=0)
    with registry.writing() as session:
        for i in range(5):  # two workers, five minutes of one hour, and a minute of the next
            session.add(_traffic(hour + timedelta(minutes=i), f"w{i % 2}", 3 + i, [1, i, 0]))
        session.add(_traffic(hour + timedelta(hours=1, minutes=7), "w0", 4, [0, 0, 4, 1]))
        session.add(_traffic(NOW - timedelta(minutes=3), "w0", 9, [9]))  # recent: untouched
    since = hour - timedelta(hours=1)
    before = deployments.traffic("churn", 1, since=since)
    policy = RetentionPolicy(traffic_minute_days=7, batch_rows=4)

    first = sweep(registry, policy, now=NOW)
    assert first["traffic rolled up"] == 4  # bounded: at most batch_rows per sweep
    assert sweep(registry, policy, now=NOW)["traffic rolled up"] == 2
    assert sweep(registry, policy, now=NOW)["traffic rolled up"] == 0

    after = deployments.traffic("churn", 1, since=since)
    assert after.public() == before.public() and after.buckets == before.buckets
    assert _count(registry, TrafficRow, TrafficRow.worker == HOURLY) == 2  # one per hour
    assert _count(registry, TrafficRow, TrafficRow.worker != HOURLY) == 1  # the recent minute
    # a window from the start of an hour still sees that whole hour
    assert deployments.traffic("churn", 1, since=hour + timedelta(hours=1)).requests == 4 + 9


def test_hourly_rows_drift_snapshots_and_deliveries_leave_after_their_days(services):
    registry = services.registry
    with registry.writing() as session:
        session.add(_traffic(NOW - timedelta(days=500), HOURLY, 5, [5]))
        session.add(_traffic(NOW - timedelta(days=20), HOURLY, 6, [6]))
        for days in (200, 190, 1):
            session.add(DriftRow(model_name="churn", version=1, feature="tenure_months",
                                 status="ok", rows=100, psi=0.01,
                                 computed_at=NOW - timedelta(days=days)))
        event = EventRow(model_name="churn", kind="registered", actor="t", detail={},
                         created_at=NOW - timedelta(days=60))
        session.add(event)
        session.flush()
        long_ago = NOW - timedelta(days=45)
        session.add_all([
            WebhookDeliveryRow(event_id=event.id, url="https://a", attempts=1,
                               next_attempt_at=long_ago, delivered_at=long_ago, failed=False),
            WebhookDeliveryRow(event_id=event.id, url="https://b", attempts=8,
                               next_attempt_at=long_ago, failed=True),
            WebhookDeliveryRow(event_id=event.id, url="https://c", attempts=2,
                               next_attempt_at=long_ago, failed=False),  # still pending
            WebhookDeliveryRow(event_id=event.id, url="https://d", attempts=1,
                               next_attempt_at=NOW, delivered_at=NOW - timedelta(days=2),
                               failed=False)])
    done = sweep(registry, RetentionPolicy(batch_rows=1), now=NOW)
    assert done == {"traffic rolled up": 0, "traffic removed": 1, "traffic by user removed": 0,
                    "drift snapshots removed": 1, "webhook deliveries removed": 1,
                    "outcome join rows removed": 0}
    again = sweep(registry, RetentionPolicy(), now=NOW)
    assert again["drift snapshots removed"] == 1 and again["webhook deliveries removed"] == 1
    assert _count(registry, TrafficRow) == 1 and _count(registry, DriftRow) == 1
    with registry.reading() as session:
        urls = sorted(session.scalars(select(WebhookDeliveryRow.url)))
    assert urls == ["https://c", "https://d"]  # the pending one and the recent one
    assert _count(registry, EventRow) == 1  # the audit trail is kept
    # zero days keeps everything
    forever = RetentionPolicy(traffic_minute_days=0, traffic_days=0, drift_days=0, webhook_days=0)
    assert sum(sweep(registry, forever, now=NOW + timedelta(days=9999)).values()) == 0


def test_the_worker_sweeps_under_the_housekeeping_round(services):
    registry = services.registry
    with registry.writing() as session:
        session.add(_traffic(datetime.now(timezone.utc) - timedelta(days=30), "w0", 2, [2]))
    assert services.worker.sweep_retention()["traffic rolled up"] == 1
    assert _count(registry, TrafficRow, TrafficRow.worker == HOURLY) == 1
