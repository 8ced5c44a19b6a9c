"""Live behaviour of a model, shared by the dashboard and the model report: traffic, latency and
errors per minute over every worker, from the registry's traffic counters."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from ..registry.deployments import Traffic
from ..registry.schema import TrafficRow
from ..registry.service import Registry
from ..scoring.traffic import percentile_ms


@dataclass
class Series:
    labels: list[str] = field(default_factory=list)
    requests: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    p50: list[float | None] = field(default_factory=list)
    p95: list[float | None] = field(default_factory=list)
    total: Traffic = field(default_factory=Traffic)


def series(registry: Registry, model: str, minutes: int = 60) -> Series:
    """Per-minute sums for the last ``minutes`` (all versions, all workers)."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    by_minute: dict[datetime, Traffic] = {}
    with registry.reading() as session:
        for row in session.scalars(select(TrafficRow).where(TrafficRow.model_name == model,
                                                            TrafficRow.minute >= start)):
            minute = row.minute if row.minute.tzinfo else row.minute.replace(tzinfo=timezone.utc)
            by_minute.setdefault(minute, Traffic()).add(Traffic.of(row))
    out = Series()
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        t = by_minute.get(minute, Traffic())
        out.labels.append(minute.strftime("%H:%M"))
        out.requests.append(float(t.requests))
        out.errors.append(t.error_rate * 100)
        out.p50.append(percentile_ms(t.buckets, 0.5) if t.requests else None)
        out.p95.append(percentile_ms(t.buckets, 0.95) if t.requests else None)
        out.total.add(t)
    return out


def active_workers(registry: Registry, minutes: int = 5) -> int:
    since = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    with registry.reading() as session:
        return int(session.scalar(select(func.count(func.distinct(TrafficRow.worker)))
                                  .where(TrafficRow.minute >= since)) or 0)


def summary(s: Series) -> dict[str, Any]:
    t = s.total
    return {"requests": t.requests, "rows": t.rows, "error_rate": t.error_rate,
            "p50_ms": percentile_ms(t.buckets, 0.5), "p95_ms": percentile_ms(t.buckets, 0.95)}
