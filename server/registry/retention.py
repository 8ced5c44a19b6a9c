"""Retention for the tables that grow with traffic and time: traffic counters (and traffic by
user, kept as long as the hourly counters), drift snapshots, webhook deliveries and outcome join
rows (the prediction log keeps its own, in ``scoring.prediction_log``).

Each sweep does a bounded amount of work per table (``batch_rows``), in its own short
transaction, so switching retention on for a year of history is worked off over several sweeps
instead of one transaction that holds the database. Events are the audit trail and are kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from .database import rows_changed
from .deployments import Traffic
from .schema import Base, DriftRow, OutcomeJoinRow, TrafficRow, TrafficUserRow, WebhookDeliveryRow
from .service import Registry

HOURLY = "(hourly)"  # the worker name of rolled-up rows: no worker id has parentheses


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each table keeps its rows (days; 0 keeps them forever)."""

    traffic_minute_days: float = 7.0  # per-minute, per-worker counters, then one row per hour
    traffic_days: float = 400.0  # hourly counters (the traffic API looks back up to a year)
    drift_days: float = 180.0
    webhook_days: float = 30.0  # delivered or given-up deliveries; pending ones always stay
    outcome_days: float = 400.0  # join rows of tracked models, by the time they were scored
    batch_rows: int = 5000


def sweep(registry: Registry, policy: RetentionPolicy,
          now: datetime | None = None) -> dict[str, int]:
    """One bounded pass over every table; what it did, per table (rows rolled up or removed)."""
    now = now or datetime.now(timezone.utc)
    return {"traffic rolled up": roll_up_traffic(registry, policy, now),
            "traffic removed": _remove_old_traffic(registry, policy, now),
            "traffic by user removed": _remove_old_user_traffic(registry, policy, now),
            "drift snapshots removed": _remove_old_drift(registry, policy, now),
            "webhook deliveries removed": _remove_old_deliveries(registry, policy, now),
            "outcome join rows removed": _remove_old_outcome_joins(registry, policy, now)}


def _cutoff(now: datetime, days: float) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def _hour(minute: datetime) -> datetime:
    stamp = minute if minute.tzinfo else minute.replace(tzinfo=timezone.utc)
    return stamp.replace(minute=0, second=0, microsecond=0)


def roll_up_traffic(registry: Registry, policy: RetentionPolicy, now: datetime) -> int:
    """Fold up to ``batch_rows`` of the oldest per-minute rows past their retention into one row
    per model, version and hour (worker ``(hourly)``), in one transaction: totals, error counts
    and latency histograms are sums, so every window that covers whole hours reads the same."""
    cutoff = _cutoff(now, policy.traffic_minute_days)
    if cutoff is None:
        return 0
    with registry.writing() as session:
        rows = list(session.scalars(
            select(TrafficRow).where(TrafficRow.worker != HOURLY, TrafficRow.minute < cutoff)
            .order_by(TrafficRow.minute, TrafficRow.id).limit(policy.batch_rows)))
        hours: dict[tuple[str, int, datetime], Traffic] = {}
        for row in rows:
            key = (row.model_name, row.version, _hour(row.minute))
            hours.setdefault(key, Traffic()).add(Traffic.of(row))
        for (model, version, hour), total in hours.items():
            existing = session.scalar(select(TrafficRow).where(
                TrafficRow.model_name == model, TrafficRow.version == version,
                TrafficRow.worker == HOURLY, TrafficRow.minute == hour))
            if existing is None:
                existing = TrafficRow(model_name=model, version=version, worker=HOURLY,
                                      minute=hour)
                session.add(existing)
            else:
                total = Traffic.of(existing).add(total)
            total.store(existing)
        if rows:
            session.execute(delete(TrafficRow).where(TrafficRow.id.in_([r.id for r in rows])))
    return len(rows)


def _remove_old_traffic(registry: Registry, policy: RetentionPolicy, now: datetime) -> int:
    cutoff = _cutoff(now, policy.traffic_days)
    return 0 if cutoff is None else _remove_oldest(
        registry, TrafficRow, TrafficRow.minute < cutoff, TrafficRow.minute, policy.batch_rows)


def _remove_old_user_traffic(registry: Registry, policy: RetentionPolicy, now: datetime) -> int:
    cutoff = _cutoff(now, policy.traffic_days)
    return 0 if cutoff is None else _remove_oldest(
        registry, TrafficUserRow, TrafficUserRow.hour < cutoff, TrafficUserRow.hour,
        policy.batch_rows)


def _remove_old_drift(registry: Registry, policy: RetentionPolicy, now: datetime) -> int:
    cutoff = _cutoff(now, policy.drift_days)
    return 0 if cutoff is None else _remove_oldest(
        registry, DriftRow, DriftRow.computed_at < cutoff, DriftRow.id, policy.batch_rows)


def _remove_old_outcome_joins(registry: Registry, policy: RetentionPolicy, now: datetime) -> int:
    cutoff = _cutoff(now, policy.outcome_days)
    return 0 if cutoff is None else _remove_oldest(
        registry, OutcomeJoinRow, OutcomeJoinRow.created_at < cutoff, OutcomeJoinRow.id,
        policy.batch_rows)


def _remove_old_deliveries(registry: Registry, policy: RetentionPolicy, now: datetime) -> int:
    cutoff = _cutoff(now, policy.webhook_days)
    if cutoff is None:
        return 0
    delivered = and_(WebhookDeliveryRow.delivered_at.is_not(None),
                     WebhookDeliveryRow.delivered_at < cutoff)
    given_up = and_(WebhookDeliveryRow.failed.is_(True), WebhookDeliveryRow.next_attempt_at < cutoff)
    return _remove_oldest(registry, WebhookDeliveryRow, or_(delivered, given_up),
                          WebhookDeliveryRow.id, policy.batch_rows)


def _remove_oldest(registry: Registry, table: type[Base], condition: ColumnElement[bool],
                   order: ColumnElement[Any] | InstrumentedAttribute[Any], limit: int) -> int:
    """Delete at most ``limit`` rows matching ``condition``, oldest first (by ``order``)."""
    key = table.__table__.c.id
    with registry.writing() as session:
        ids = list(session.scalars(select(key).where(condition).order_by(order).limit(limit)))
        if not ids:
            return 0
        return rows_changed(session.execute(delete(table).where(key.in_(ids))))
