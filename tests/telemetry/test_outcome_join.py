"""The set-based join (one lookup by id, one by business key, one bulk UPDATE per chunk) answers
every row of a chunk as the row-at-a-time join did: ids, keys (the latest prediction at or before
the outcome's time, ties to the last written), duplicates within the chunk (the last wins, each
row sees the earlier ones), unknowns, invalid rows and late flags; on SQLite and PostgreSQL.

The reference below is the row-at-a-time rule written out over plain dicts; a hand-made chunk
pins its answers, then random chunks compare the two answer by answer and the stored rows."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select

from server.registry.schema import OutcomeJoinRow
from server.types import Outcome

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
CLASSES = ("no", "yes")


def _hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def _track(services: Any, rows: list[tuple[str, str | None, float]]) -> None:
    """Tracked rows (prediction id, business key, hours after T0), written in this order."""
    services.set_monitoring("churn", {"outcomes": {"enabled": True}}, actor="t")
    with services.registry.writing() as session:
        session.execute(insert(OutcomeJoinRow.__table__), [
            {"model_name": "churn", "version": 1, "prediction_id": pid, "business_key": key,
             "created_at": _hours(h), "prediction": {"value": "no"}, "probabilities": [0.6, 0.4],
             "segments": {}} for pid, key, h in rows])


def _stored(services: Any) -> dict[str, tuple[Any, datetime | None]]:
    with services.registry.reading() as session:
        out = {}
        for pid, actual, observed in session.execute(select(
                OutcomeJoinRow.prediction_id, OutcomeJoinRow.actual, OutcomeJoinRow.observed_at)):
            if observed is not None and observed.tzinfo is None:  # SQLite keeps UTC, naive
                observed = observed.replace(tzinfo=timezone.utc)
            out[pid] = ((actual or {}).get("value") if actual else None, observed)
        return out


def reference(rows: list[tuple[str, str | None, float]], chunk: list[Outcome],
              state: dict[str, tuple[Any, datetime | None]]) -> list[tuple[str, str | None, bool]]:
    """The row-at-a-time join over plain values: (status, prediction id, late) per outcome;
    ``state`` (prediction id -> (actual, outcome time)) is updated as it goes."""
    observed = [at for _, at in state.values() if at is not None]
    latest = max(observed) if observed else None
    order = {pid: i for i, (pid, _, _) in enumerate(rows)}
    out: list[tuple[str, str | None, bool]] = []
    for o in chunk:
        answer: tuple[str, str | None, bool]
        at = o.time
        target = None
        if o.actual not in CLASSES:
            answer = ("invalid", o.prediction_id, False)
        elif o.prediction_id:
            target = o.prediction_id if o.prediction_id in order else None
            answer = ("unknown", o.prediction_id, False)
        else:
            named = [(_hours(h), order[pid], pid) for pid, key, h in rows if key == o.key]
            before = [n for n in named if n[0] <= at]  # type: ignore[operator]
            target = max(before)[2] if before else None
            answer = ("unknown" if not named else "invalid", None, False)
        if target is not None:
            created = _hours(rows[order[target]][2])
            late = latest is not None and at < latest  # type: ignore[operator]
            previous = state[target][0]
            if at < created:  # type: ignore[operator]
                answer = ("invalid", target, False)
            elif previous == o.actual:
                answer = ("unchanged", target, late)
            else:
                answer = ("replaced" if previous is not None else "recorded", target, late)
                state[target] = (o.actual, at)
        out.append(answer)
        if latest is None or at > latest:  # type: ignore[operator]
            latest = at
    return out


def _answers(report: dict[str, Any]) -> list[tuple[str, str | None, bool]]:
    return [(a["status"], a.get("prediction_id"), a.get("late", False))
            for a in report["answers"]]


def test_a_mixed_chunk_gets_the_row_at_a_time_answers(services, demo_registered):
    rows = [("p1", "A", 0), ("p2", "A", 2), ("p3", "A", 2), ("p4", "B", 1), ("p5", None, 0),
            ("p6", "C", 5)]
    _track(services, rows)
    chunk = [Outcome(i, actual, prediction_id=pid, key=key, time=_hours(h))
             for i, (pid, key, actual, h) in enumerate([
                 ("p5", None, "yes", 1),     # 0 by id: recorded
                 (None, "A", "yes", 1),      # 1 key A at 1 h: p1
                 (None, "A", "yes", 3),      # 2 key A at 3 h: p2 and p3 tie, p3 was written last
                 ("p3", None, "no", 4),      # 3 the same row by id: replaced
                 ("p3", None, "no", 4),      # 4 again: unchanged, not counted twice
                 (None, "B", "yes", 0.5),    # 5 before B's only prediction: invalid
                 (None, "Z", "yes", 1),      # 6 no such key
                 ("nope", None, "yes", 1),   # 7 no such id
                 ("p5", None, "maybe", 1),   # 8 not a class
                 (None, "A", "no", 3),       # 9 key A again: p3, already "no": unchanged, late
                 ("p4", None, "no", 0.5),    # 10 before its prediction: invalid
                 (None, "C", "yes", 6),      # 11 recorded
                 (None, "C", "no", 7),       # 12 the same row later in the chunk: last wins
                 ("p4", None, "no", 2),      # 13 recorded, late (7 h already seen)
             ])]
    want = [("recorded", "p5", False), ("recorded", "p1", False), ("recorded", "p3", False),
            ("replaced", "p3", False), ("unchanged", "p3", False), ("invalid", None, False),
            ("unknown", None, False), ("unknown", "nope", False), ("invalid", "p5", False),
            ("unchanged", "p3", True), ("invalid", "p4", False), ("recorded", "p6", False),
            ("replaced", "p6", False), ("recorded", "p4", True)]
    state = {pid: (None, None) for pid, _, _ in rows}
    assert reference(rows, chunk, state) == want
    report = services.record_outcomes("churn", chunk)
    assert _answers(report) == want
    assert report["counts"] == {"recorded": 5, "replaced": 2, "unchanged": 2, "invalid": 3,
                                "unknown": 2} and report["late"] == 2
    assert _stored(services) == state == {
        "p1": ("yes", _hours(1)), "p2": (None, None), "p3": ("no", _hours(4)),
        "p4": ("no", _hours(2)), "p5": ("yes", _hours(1)), "p6": ("no", _hours(7))}
    # the same chunk again: nothing recorded twice, the within-chunk replacements replay
    again = services.record_outcomes("churn", chunk)
    assert _answers(again) == reference(rows, chunk, state)
    assert again["counts"]["unchanged"] == 5 and "recorded" not in again["counts"]
    assert _stored(services) == state


def test_random_chunks_match_the_row_at_a_time_join(services, demo_registered):
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(25)]
    rows = [(f"r{i}", rng.choice(keys + [None]), rng.randrange(0, 48) / 2) for i in range(120)]
    _track(services, rows)
    state: dict[str, tuple[Any, datetime | None]] = {pid: (None, None) for pid, _, _ in rows}
    seen: set[str] = set()
    for _ in range(4):
        chunk = []
        for i in range(400):
            by_id = rng.random() < 0.5
            pid = rng.choice([p for p, _, _ in rows] + ["gone-1", "gone-2"]) if by_id else None
            key = None if by_id else rng.choice(keys + ["stranger"])
            actual = rng.choice(["yes", "no", "no", "yes", "maybe"])
            chunk.append(Outcome(i, actual, prediction_id=pid, key=key,
                                 time=_hours(rng.randrange(0, 120) / 2)))
        want = reference(rows, chunk, state)
        assert _answers(services.record_outcomes("churn", chunk)) == want
        assert _stored(services) == state
        seen |= {s for s, _, _ in want}
    assert seen == {"recorded", "replaced", "unchanged", "unknown", "invalid"}
