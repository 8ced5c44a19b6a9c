"""The set-based half of recording outcomes: per chunk, one query finds the tracked rows named by
prediction id, one finds for each (business key, outcome time) the latest prediction for that key
made at or before that time, and one executemany UPDATE writes what changed. The per-row
decisions (``outcomes.record``) run in memory between them, so a chunk of thousands of outcomes
costs a handful of statements, not a round trip per row.

The key query walks ``ix_outcome_joins_key`` (model_name, business_key, created_at, id)
backwards from the outcome's time, one index probe per pair: a customer scored every day for
years costs the same as one scored once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Collection, Sequence

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..registry.schema import OutcomeJoinRow
from ..registry.service import _utc

JOINS: Table = OutcomeJoinRow.__table__  # type: ignore[assignment]


@dataclass
class Target:
    """A tracked row an outcome joins to, as much of it as the join decides on; ``actual`` is
    updated in memory as the chunk goes, so a later row of the same chunk sees an earlier one."""

    id: int
    prediction_id: str
    created_at: datetime
    actual: dict[str, Any] | None


def _target(row: Any) -> Target:
    return Target(row.id, row.prediction_id, _utc(row.created_at),  # type: ignore[arg-type]
                  row.actual)


def latest_observed(session: Session, name: str) -> datetime | None:
    """The latest outcome time recorded for ``name`` (what makes a new outcome late)."""
    return _utc(session.scalar(select(func.max(JOINS.c.observed_at))
                               .where(JOINS.c.model_name == name)))


def by_ids(session: Session, name: str, ids: Collection[str]) -> dict[str, Target]:
    """``name``'s tracked rows with these prediction ids, by id (unknown ids are absent)."""
    if not ids:
        return {}
    query = select(JOINS.c.id, JOINS.c.prediction_id, JOINS.c.created_at, JOINS.c.actual).where(
        JOINS.c.model_name == name, JOINS.c.prediction_id.in_(list(ids)))
    return {row.prediction_id: _target(row) for row in session.execute(query)}


# the (key, time) pairs of one chunk, in a temporary table of the chunk's connection: the lookup
# is then one statement of fixed text (compiled once), whatever the chunk's size
WANTED = Table("outcome_wanted", MetaData(), Column("i", Integer), Column("k", String(255)),
               Column("at", DateTime(timezone=True)), prefixes=["TEMPORARY"])


def by_keys(session: Session, name: str, pairs: Sequence[tuple[str, datetime]]
            ) -> list[Target | bool]:
    """For each (business key, time): the latest prediction for that key made at or before that
    time (ties on time: the last written); else True where the key has predictions only after
    it, False where the key has none. In the order of ``pairs``."""
    if not pairs:
        return []
    WANTED.create(session.connection(), checkfirst=True)
    session.execute(delete(WANTED))
    session.execute(insert(WANTED), [{"i": i, "k": key, "at": at.astimezone(timezone.utc)}
                                     for i, (key, at) in enumerate(pairs)])
    out: list[Target | bool] = [False] * len(pairs)
    for row in session.execute(_LOOKUP, {"model": name}):
        out[row.i] = _target(row) if row.id is not None else bool(row.known)
    session.execute(delete(WANTED))
    return out


def _lookup() -> Any:
    model: Any = bindparam("model", type_=String(64))
    probe = JOINS.alias("probe")
    latest = (select(probe.c.id)
              .where(probe.c.model_name == model, probe.c.business_key == WANTED.c.k,
                     probe.c.created_at <= WANTED.c.at)
              .order_by(probe.c.created_at.desc(), probe.c.id.desc()).limit(1)
              .correlate(WANTED).scalar_subquery())
    any_row = JOINS.alias("any_row")
    known = exists().where(any_row.c.model_name == model,
                           any_row.c.business_key == WANTED.c.k).correlate(WANTED)
    hits = select(WANTED.c.i, latest.label("hit"), known.label("known")).subquery("hits")
    return select(hits.c.i, hits.c.known, JOINS.c.id, JOINS.c.prediction_id,
                  JOINS.c.created_at, JOINS.c.actual).select_from(
        hits.outerjoin(JOINS, JOINS.c.id == hits.c.hit))


_LOOKUP = _lookup()


def write(session: Session, changes: dict[int, tuple[Any, datetime]], now: datetime) -> None:
    """One executemany UPDATE: each changed row's final actual and outcome time (a row changed
    twice in the chunk is written once, with the last value)."""
    if not changes:
        return
    statement = update(JOINS).where(JOINS.c.id == bindparam("row_id")).values(
        actual=bindparam("new_actual"), observed_at=bindparam("new_observed"), recorded_at=now)
    session.execute(statement, [
        {"row_id": row_id, "new_actual": {"value": value}, "new_observed": at}
        for row_id, (value, at) in changes.items()])
