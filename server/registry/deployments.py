"""Deployment state in the registry: the version pipeline's queue, rollouts and traffic counters.

Every method is safe to call from many workers and hosts at once: a pending version is claimed by one
conditional UPDATE, a rollout is finished by one conditional UPDATE, so each step happens once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..types.record import public_fields
from .database import rows_changed
from .schema import (
    AliasRow,
    ModelRow,
    RolloutRow,
    TrafficRow,
    TrafficUserRow,
    VersionRow,
    WebhookDeliveryRow,
    utcnow,
)
from .service import PRODUCTION, Registry, VersionInfo, _utc

STALE_CLAIM = timedelta(minutes=5)


@dataclass
class Rollout:
    id: int
    model: str
    version: int
    baseline: int | None
    kind: str
    config: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return public_fields(self, "id", "version", "baseline", "kind", "config", "started_at",
                             "finished_at", "outcome", "detail")


@dataclass(frozen=True)
class RolloutPlan:
    """What the pipeline does with a version that passed: promote it (no production yet), wait
    for a person (manual), promote and watch it (auto), or open a canary or shadow."""

    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    baseline: int | None = None
    reason: str = ""


@dataclass
class Traffic:
    requests: int = 0
    errors: int = 0
    rows: int = 0
    latency_sum: float = 0.0
    buckets: list[int] = field(default_factory=list)
    shadow_compared: int = 0
    shadow_agreed: int = 0

    COUNTERS = ("requests", "errors", "rows", "latency_sum", "shadow_compared", "shadow_agreed")

    def add(self, other: "Traffic") -> "Traffic":
        """Add ``other``'s counts to these (buckets of different lengths line up from 0)."""
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        width = max(len(self.buckets), len(other.buckets))
        self.buckets = [(self.buckets[i] if i < len(self.buckets) else 0)
                        + (other.buckets[i] if i < len(other.buckets) else 0)
                        for i in range(width)]
        return self

    @classmethod
    def of(cls, row: Any) -> "Traffic":
        return cls(**{n: getattr(row, n) for n in cls.COUNTERS},
                   buckets=list(row.latency_buckets or []))

    def store(self, row: Any) -> None:
        """Write these counts into a traffic row (the inverse of :meth:`of`)."""
        for name in self.COUNTERS:
            setattr(row, name, getattr(self, name))
        row.latency_buckets = self.buckets

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def mean_latency(self) -> float:
        return self.latency_sum / self.requests if self.requests else 0.0

    @property
    def agreement(self) -> float | None:
        return self.shadow_agreed / self.shadow_compared if self.shadow_compared else None

    def public(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "rows": self.rows,
                "error_rate": self.error_rate, "mean_latency_ms": self.mean_latency * 1000,
                "shadow_compared": self.shadow_compared, "shadow_agreed": self.shadow_agreed,
                "agreement": self.agreement}


@dataclass
class UserTraffic:
    """One caller's scoring counts in one hour: how much, never what."""

    name: str = ""
    requests: int = 0
    errors: int = 0
    rows: int = 0

    def add(self, other: "UserTraffic") -> "UserTraffic":
        self.requests += other.requests
        self.errors += other.errors
        self.rows += other.rows
        self.name = other.name or self.name
        return self


def _iso(value: datetime) -> str:
    stamp = _utc(value)
    assert stamp is not None
    return stamp.isoformat()


UserBuckets = dict[tuple[str, datetime, str], UserTraffic]  # (model, hour, caller) -> counts


class Deployments:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # -- the pipeline's queue ---------------------------------------------------------------------

    def claim_next(self, worker: str, stale_after: timedelta = STALE_CLAIM) -> VersionInfo | None:
        """Claim the oldest pending version of some model whose earlier versions are all done.
        A claim older than ``stale_after`` belonged to a worker that died: it is taken up again."""
        now = utcnow()
        waiting = or_(VersionRow.pipeline == "pending",
                      and_(VersionRow.pipeline == "processing",
                           VersionRow.claimed_at < now - stale_after))
        with self.registry.reading() as session:  # most ticks find nothing: no write lock then
            if session.scalar(select(VersionRow.id).where(waiting).limit(1)) is None:
                return None
        with self.registry.writing() as session:
            session.execute(update(VersionRow)
                            .where(VersionRow.pipeline == "processing",
                                   VersionRow.claimed_at < now - stale_after)
                            .values(pipeline="pending", claimed_by=None))
            busy = select(VersionRow.model_id).where(VersionRow.pipeline == "processing")
            first = (select(VersionRow.model_id, func.min(VersionRow.version).label("v"))
                     .where(VersionRow.pipeline == "pending",
                            VersionRow.model_id.not_in(busy))
                     .group_by(VersionRow.model_id).subquery())
            candidate = session.execute(
                select(VersionRow.id).join(first, and_(VersionRow.model_id == first.c.model_id,
                                                       VersionRow.version == first.c.v))
                .order_by(VersionRow.id).limit(1)).scalar()
            if candidate is None:
                return None
            claimed = rows_changed(session.execute(update(VersionRow)
                                                   .where(VersionRow.id == candidate,
                                                          VersionRow.pipeline == "pending")
                                                   .values(pipeline="processing", claimed_at=now,
                                                           claimed_by=worker)))
            if not claimed:
                return None
            row = session.get(VersionRow, candidate)
            assert row is not None  # claimed by the update above, in this transaction
            model = session.get(ModelRow, row.model_id)
            assert model is not None  # the version's foreign key
            name, number = model.name, row.version
        return self.registry.get_version(name, number)

    def finish(self, name: str, version: int, gates: list[dict[str, Any]], passed: bool,
               actor: str, plan: RolloutPlan | None = None, *, worker: str | None = None) -> bool:
        """Store the gates' results and carry out the rollout ``plan`` in one transaction, so a
        crash leaves the version either unprocessed (and taken up again) or fully rolled out.
        With ``worker``, only while that worker still holds the claim: a slow worker whose claim
        went stale and was taken up by another must not roll the version out a second time
        (False then, and nothing is written)."""
        with self.registry.writing() as session:
            model = self.registry._model_row(session, name)
            if worker is not None and not rows_changed(session.execute(
                    update(VersionRow).where(VersionRow.model_id == model.id,
                                             VersionRow.version == version,
                                             VersionRow.pipeline == "processing",
                                             VersionRow.claimed_by == worker)
                    .values(pipeline="done"))):
                return False
            row = self.registry._version_row(session, model, version)
            row.gates, row.gate_status, row.pipeline = gates, "passed" if passed else "failed", "done"
            failed = [g for g in gates if not g["passed"]]
            self.registry._event(session, model, "gates_passed" if passed else "gates_failed",
                                 actor, version, gates=gates,
                                 reason="; ".join(f"{g['gate']}: {g['detail']}" for g in failed))
            if passed and plan is not None:
                self._carry_out(session, model, row, plan, actor)
        return True

    def _carry_out(self, session: Any, model: ModelRow, row: VersionRow, plan: RolloutPlan,
                   actor: str) -> None:
        if plan.kind == "manual":
            self.registry._event(session, model, "awaiting_promotion", actor, row.version,
                                 reason=plan.reason)
            return
        if plan.kind in ("promote", "watch"):
            self.registry._set_alias(session, model, PRODUCTION, row, actor, reason=plan.reason)
        if plan.kind != "promote":
            self._open_rollout(session, model, row, plan.kind, plan.config, plan.baseline, actor)

    def pending_count(self) -> int:
        with self.registry.reading() as session:
            return int(session.scalar(select(func.count()).select_from(VersionRow)
                                      .where(VersionRow.pipeline != "done")) or 0)

    # -- rollouts -----------------------------------------------------------------------------------

    @staticmethod
    def _rollout(row: RolloutRow, name: str) -> Rollout:
        return Rollout(id=row.id, model=name, version=row.version, baseline=row.baseline,
                       kind=row.kind, config=row.config or {},
                       started_at=_utc(row.started_at),  # type: ignore[arg-type]
                       finished_at=_utc(row.finished_at), outcome=row.outcome,
                       detail=row.detail or {})

    def start_rollout(self, name: str, version: int, kind: str, config: dict[str, Any],
                      baseline: int | None, actor: str) -> Rollout:
        with self.registry.writing() as session:
            model = self.registry._model_row(session, name)
            row = self.registry._version_row(session, model, version)
            rollout = self._open_rollout(session, model, row, kind, config, baseline, actor)
            return self._rollout(rollout, name)

    def _open_rollout(self, session: Any, model: ModelRow, row: VersionRow, kind: str,
                      config: dict[str, Any], baseline: int | None, actor: str) -> RolloutRow:
        """Open a rollout, finishing any open one of the same model as superseded."""
        for old in session.scalars(select(RolloutRow).where(RolloutRow.model_id == model.id,
                                                            RolloutRow.finished_at.is_(None))):
            old.finished_at, old.outcome = utcnow(), "superseded"
            self._drop_alias(session, model.id, old.kind)
            self.registry._event(session, model, f"{old.kind}_finished", actor, old.version,
                                 outcome="superseded", by_version=row.version)
        rollout = RolloutRow(model_id=model.id, version=row.version, baseline=baseline, kind=kind,
                             config=config, started_at=utcnow(), detail={})
        session.add(rollout)
        if kind in ("canary", "shadow"):
            self.registry._set_alias(session, model, kind, row, actor, reason=f"{kind} started",
                                     kind=f"{kind}_started")
        else:
            self.registry._event(session, model, f"{kind}_started", actor, row.version,
                                 config=config)
        session.flush()
        return rollout

    @staticmethod
    def _drop_alias(session: Any, model_id: int, kind: str) -> None:
        if kind in ("canary", "shadow"):
            alias = session.get(AliasRow, (model_id, kind))
            if alias is not None:
                session.delete(alias)

    def finish_rollout(self, rollout: Rollout, outcome: str, actor: str, *,
                       promote: bool = False, rollback: bool = False,
                       detail: dict[str, Any] | None = None,
                       watch: dict[str, Any] | None = None) -> bool:
        """Close ``rollout`` once (False if another worker already did), promoting the version
        (and opening a ``watch`` over it) or rolling production back, in the same transaction."""
        with self.registry.writing() as session:
            done = rows_changed(session.execute(update(RolloutRow)
                                                .where(RolloutRow.id == rollout.id,
                                                       RolloutRow.finished_at.is_(None))
                                                .values(finished_at=utcnow(), outcome=outcome,
                                                        detail=detail or {})))
            if not done:
                return False
            model = self.registry._model_row(session, rollout.model)
            self._drop_alias(session, model.id, rollout.kind)
            reason = (detail or {}).get("reason", outcome)
            self.registry._event(session, model, f"{rollout.kind}_finished", actor,
                                 rollout.version, outcome=outcome, **(detail or {}))
            row = self.registry._version_row(session, model, rollout.version)
            if promote:
                row.rolled_back = False
                self.registry._set_alias(session, model, PRODUCTION, row, actor, reason=reason)
                if watch is not None:
                    self._open_rollout(session, model, row, "watch", watch, rollout.baseline,
                                       actor)
            if rollback:
                row.rolled_back = True
                if rollout.kind == "watch" and rollout.baseline is not None:
                    base = session.scalar(select(VersionRow).where(
                        VersionRow.model_id == model.id, VersionRow.version == rollout.baseline))
                    current = session.get(AliasRow, (model.id, PRODUCTION))
                    if base is not None and current is not None and current.version_id == row.id:
                        self.registry._set_alias(session, model, PRODUCTION, base, actor,
                                                 reason=reason, kind="rolled_back")
        return True

    def open_rollouts(self, name: str | None = None) -> list[Rollout]:
        with self.registry.reading() as session:
            query = (select(RolloutRow, ModelRow.name).join(ModelRow)
                     .where(RolloutRow.finished_at.is_(None)).order_by(RolloutRow.id))
            if name is not None:
                query = query.where(ModelRow.name == name)
            return [self._rollout(row, model) for row, model in session.execute(query)]

    def rollouts(self, name: str, limit: int = 20) -> list[Rollout]:
        with self.registry.reading() as session:
            query = (select(RolloutRow, ModelRow.name).join(ModelRow)
                     .where(ModelRow.name == name).order_by(RolloutRow.id.desc()).limit(limit))
            return [self._rollout(row, model) for row, model in session.execute(query)]

    # -- traffic ------------------------------------------------------------------------------------

    def add_traffic(self, worker: str, buckets: dict[tuple[str, int, datetime], Traffic]) -> None:
        """Add a worker's counters to its rows (one row per model, version, worker, minute)."""
        with self.registry.writing() as session:
            for (model, version, minute), t in buckets.items():
                key = and_(TrafficRow.model_name == model, TrafficRow.version == version,
                           TrafficRow.worker == worker, TrafficRow.minute == minute)
                row = session.scalar(select(TrafficRow).where(key))
                if row is None:
                    try:
                        with session.begin_nested():
                            session.add(TrafficRow(
                                model_name=model, version=version, worker=worker, minute=minute,
                                requests=t.requests, errors=t.errors, rows=t.rows,
                                latency_sum=t.latency_sum, latency_buckets=list(t.buckets),
                                shadow_compared=t.shadow_compared,
                                shadow_agreed=t.shadow_agreed))
                        continue
                    except IntegrityError:
                        row = session.scalar(select(TrafficRow).where(key))
                        assert row is not None  # the insert it lost to
                Traffic.of(row).add(t).store(row)

    def traffic(self, name: str, version: int, since: datetime | None = None) -> Traffic:
        with self.registry.reading() as session:
            query = select(TrafficRow).where(TrafficRow.model_name == name,
                                             TrafficRow.version == version)
            if since is not None:
                # minute buckets: include the one the window starts in
                query = query.where(TrafficRow.minute >= since.replace(second=0, microsecond=0))
            total = Traffic()
            for row in session.scalars(query):
                total.add(Traffic.of(row))
            return total

    def add_user_traffic(self, buckets: UserBuckets) -> None:
        """Add counts to their (model, hour, caller) rows, shared by every worker and host: an
        UPDATE that adds in place, or the row's first INSERT (a lost race adds again)."""
        with self.registry.writing() as session:
            for (model, hour, caller), t in buckets.items():
                key = and_(TrafficUserRow.model_name == model, TrafficUserRow.hour == hour,
                           TrafficUserRow.caller == caller)
                bump = update(TrafficUserRow).where(key).values(
                    requests=TrafficUserRow.requests + t.requests,
                    errors=TrafficUserRow.errors + t.errors, rows=TrafficUserRow.rows + t.rows,
                    **({"caller_name": t.name[:255]} if t.name else {}))
                if rows_changed(session.execute(bump)):
                    continue
                try:
                    with session.begin_nested():
                        session.add(TrafficUserRow(
                            model_name=model, hour=hour, caller=caller[:300],
                            caller_name=t.name[:255], requests=t.requests, errors=t.errors,
                            rows=t.rows))
                except IntegrityError:
                    session.execute(bump)

    def traffic_by_user(self, name: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """Each caller's scoring requests, errors and rows of ``name`` since ``since`` (whole
        hours: the hour it falls in counts), busiest first."""
        requests = func.sum(TrafficUserRow.requests)
        query = (select(TrafficUserRow.caller, func.max(TrafficUserRow.caller_name), requests,
                        func.sum(TrafficUserRow.errors), func.sum(TrafficUserRow.rows),
                        func.min(TrafficUserRow.hour), func.max(TrafficUserRow.hour))
                 .where(TrafficUserRow.model_name == name)
                 .group_by(TrafficUserRow.caller)
                 .order_by(requests.desc(), TrafficUserRow.caller))
        start = _utc(since)  # a time without a zone is UTC
        if start is not None:
            query = query.where(TrafficUserRow.hour >= start.replace(minute=0, second=0,
                                                                     microsecond=0))
        with self.registry.reading() as session:
            return [{"user": caller, "name": label or "", "requests": int(n), "errors": int(e),
                     "rows": int(r), "first_hour": _iso(first), "last_hour": _iso(last)}
                    for caller, label, n, e, r, first, last in session.execute(query)]

    # -- webhook outbox -------------------------------------------------------------------------

    def due_deliveries(self, limit: int = 20) -> list[WebhookDeliveryRow]:
        with self.registry.reading() as session:
            return list(session.scalars(
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.delivered_at.is_(None),
                       WebhookDeliveryRow.failed.is_(False),
                       WebhookDeliveryRow.next_attempt_at <= utcnow())
                .order_by(WebhookDeliveryRow.id).limit(limit)))

    def lease_delivery(self, delivery_id: int, seconds: float) -> bool:
        """Take a delivery for ``seconds`` so no other worker sends it meanwhile."""
        with self.registry.writing() as session:
            return bool(rows_changed(session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery_id,
                       WebhookDeliveryRow.delivered_at.is_(None),
                       WebhookDeliveryRow.next_attempt_at <= utcnow())
                .values(next_attempt_at=utcnow() + timedelta(seconds=seconds)))))

    def record_delivery(self, delivery_id: int, ok: bool, error: str, retry_in: float | None) -> None:
        with self.registry.writing() as session:
            row = session.get(WebhookDeliveryRow, delivery_id)
            assert row is not None  # leased by this worker; retention removes finished ones only
            row.attempts += 1
            row.last_error = error[:500]
            if ok:
                row.delivered_at = utcnow()
            elif retry_in is None:
                row.failed = True
            else:
                row.next_attempt_at = utcnow() + timedelta(seconds=retry_in)
