"""Outcomes: the actual results the business records later, joined to what the model predicted.

:func:`record` joins a chunk of outcomes to the tracked rows (``outcome_joins``) by prediction id
or business key, one transaction per chunk, and answers every row: ``recorded``, ``replaced`` (a
different actual for a row that had one: the last upload wins, so corrections are possible),
``unchanged`` (the same actual again: nothing counted twice), ``unknown`` (no such prediction id
or key) or ``invalid`` (a value that is not one of the model's classes, not a number for a
regressor, or an outcome time before the prediction). ``late`` flags an outcome that arrived after
outcomes of a later time had already been recorded; it counts like any other, in the window of
its prediction. A business key names the latest prediction for that key made at or before the
outcome's time.

:func:`quality` computes live quality per version with the same metrics as the registration
holdout (``scoring.metrics.label_metrics``), per time window of prediction time and per value of
each categorical input, with matched counts and the delay from prediction to outcome.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import numpy as np
from sqlalchemy import func, select

from ..errors import InvalidInput, NotFound
from ..registry.schema import OutcomeJoinRow
from ..registry.service import Registry, _utc
from ..scoring.metrics import calibration_bins, label_metrics
from ..types import Outcome, Signature
from . import outcome_join as join

CHUNK_ROWS = 5000
MIN_SEGMENT_ROWS = 1


@dataclass
class Answer:
    row: int
    status: str
    message: str = ""
    prediction_id: str | None = None
    late: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "status": self.status}
        if self.prediction_id:
            out["prediction_id"] = self.prediction_id
        if self.message:
            out["message"] = self.message
        if self.late:
            out["late"] = True
        return out


@dataclass
class Report:
    """What an upload did: counts per status and one answer per row, in input order."""

    counts: dict[str, int] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    late: int = 0

    def add(self, answer: Answer) -> None:
        self.counts[answer.status] = self.counts.get(answer.status, 0) + 1
        self.late += answer.late
        self.answers.append(answer)

    def public(self) -> dict[str, Any]:
        return {"rows": len(self.answers), "counts": self.counts, "late": self.late,
                "answers": [a.as_dict() for a in self.answers]}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ActualCheck:
    """Whether a recorded actual fits the model's output (a class, or a finite number)."""

    def __init__(self, signature: Signature) -> None:
        self.kind = signature.output.kind
        self.classes = list(signature.output.classes or ())
        self.by_text = {str(c): c for c in self.classes}

    def __call__(self, value: Any) -> tuple[Any, str]:
        if hasattr(value, "item"):
            value = value.item()
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            return None, "no actual value"
        if self.kind == "regression":
            if isinstance(value, bool):
                return None, f"{value!r} is not a number"
            try:
                number = float(value)
            except (TypeError, ValueError):
                return None, f"{str(value)[:40]!r} is not a number"
            return (number, "") if math.isfinite(number) else (None, "not a finite number")
        if value in self.classes and not isinstance(value, bool):
            return value, ""
        text = str(value)
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))
        if text in self.by_text:
            return self.by_text[text], ""
        shown = ", ".join(map(repr, self.classes[:10]))
        return None, f"{text[:40]!r} is not one of the model's classes ({shown})"


def chunks(items: Iterable[Outcome], size: int = CHUNK_ROWS) -> Iterator[list[Outcome]]:
    batch: list[Outcome] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def record(registry: Registry, name: str, signature: Signature,
           outcomes: Iterable[Outcome]) -> Report:
    """Join ``outcomes`` to ``name``'s tracked rows, one transaction per chunk; callers with
    files larger than a request stream them here chunk by chunk (the CLI does)."""
    check = ActualCheck(signature)
    report = Report()
    for batch in chunks(outcomes):
        _record_chunk(registry, name, check, batch, report)
    return report


def _record_chunk(registry: Registry, name: str, check: ActualCheck, batch: list[Outcome],
                  report: Report) -> None:
    """Three statements for the chunk (see :mod:`.outcome_join`), the decisions in memory
    between them, in input order, so a row sees what earlier rows of its chunk recorded."""
    now = _now()
    checked = [_checked(o, check, now) for o in batch]
    ids = {o.prediction_id for o, (_, _, problem) in zip(batch, checked)
           if o.prediction_id and not problem}
    pairs: dict[tuple[str, datetime], int] = {}
    for o, (_, at, problem) in zip(batch, checked):
        if o.key and not o.prediction_id and not problem:
            pairs.setdefault((o.key, at), len(pairs))
    with registry.writing() as session:
        latest = join.latest_observed(session, name)
        rows = join.by_ids(session, name, ids)
        found = join.by_keys(session, name, list(pairs))
        shared: dict[int, join.Target] = {}  # one row named by id and by key: one state
        changes: dict[int, tuple[Any, datetime]] = {}
        for o, (value, at, problem) in zip(batch, checked):
            if problem:
                answer = Answer(o.row, "invalid", problem, o.prediction_id)
            else:
                target = rows.get(o.prediction_id) if o.prediction_id else \
                    found[pairs[(o.key, at)]] if o.key else None
                if isinstance(target, join.Target):
                    target = shared.setdefault(target.id, target)
                answer = _join_one(o, value, at, target, latest, now, changes)
            report.add(answer)
            if o.time is not None and (latest is None or _utc(o.time) > latest):  # type: ignore
                latest = _utc(o.time)
        join.write(session, changes, now)


def _checked(o: Outcome, check: ActualCheck, now: datetime) -> tuple[Any, datetime, str]:
    """The outcome's actual as the model's type, its time (default: now) and what is wrong with
    it before any lookup."""
    value, problem = check(o.actual)
    problem = o.problem or problem
    at: datetime = _utc(o.time) or now
    if not problem and at > now + timedelta(days=1):
        problem = "outcome time is in the future"
    return value, at, problem


def _join_one(o: Outcome, value: Any, at: datetime, target: "join.Target | bool | None",
              latest: datetime | None, now: datetime,
              changes: dict[int, tuple[Any, datetime]]) -> Answer:
    """One valid outcome against its looked-up row: ``target`` is the row, or for a business
    key True (predictions only after ``at``) / False (none); None: an unknown id or no key."""
    if o.prediction_id:
        if not isinstance(target, join.Target):
            return Answer(o.row, "unknown", "no tracked prediction has this id", o.prediction_id)
    elif o.key:
        if target is False:
            return Answer(o.row, "unknown", "no tracked prediction has this business key")
        if not isinstance(target, join.Target):
            return Answer(o.row, "invalid", "outcome time is before every prediction for this "
                          "business key")
    else:
        return Answer(o.row, "invalid", "give a prediction_id or a business key")
    if at < target.created_at:
        return Answer(o.row, "invalid", "outcome time is before the prediction",
                      target.prediction_id)
    late = latest is not None and at < latest
    previous = target.actual.get("value") if target.actual is not None else None
    if target.actual is not None and previous == value:
        return Answer(o.row, "unchanged", "", target.prediction_id, late)
    status = "replaced" if target.actual is not None else "recorded"
    target.actual = {"value": value}
    changes[target.id] = (value, at.astimezone(timezone.utc))
    return Answer(o.row, status, "", target.prediction_id, late)


# -- live quality ------------------------------------------------------------------------------

@dataclass
class Joined:
    """Matched rows of one version: truth, prediction, probabilities, times, segments."""

    y: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    probs: list[list[float] | None] = field(default_factory=list)
    scored_at: list[datetime] = field(default_factory=list)
    delay_hours: list[float] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, picks: list[int]) -> "Joined":
        out = Joined()
        for name in ("y", "labels", "probs", "scored_at", "delay_hours", "segments"):
            values = getattr(self, name)
            setattr(out, name, [values[i] for i in picks])
        return out


def joined_rows(registry: Registry, name: str, *, version: int | None = None,
                since: datetime | None = None, until: datetime | None = None,
                last: int | None = None) -> dict[int, Joined]:
    """Matched rows per version, oldest prediction first; ``last``: only the newest ``last``
    outcomes (by outcome time) over all versions."""
    query = select(OutcomeJoinRow.version, OutcomeJoinRow.actual, OutcomeJoinRow.prediction,
                   OutcomeJoinRow.probabilities, OutcomeJoinRow.created_at,
                   OutcomeJoinRow.observed_at, OutcomeJoinRow.segments).where(
        OutcomeJoinRow.model_name == name, OutcomeJoinRow.actual.is_not(None),
        OutcomeJoinRow.observed_at.is_not(None))
    if version is not None:
        query = query.where(OutcomeJoinRow.version == version)
    if since is not None:
        query = query.where(OutcomeJoinRow.created_at >= since)
    if until is not None:
        query = query.where(OutcomeJoinRow.created_at < until)
    if last is not None:
        query = query.order_by(OutcomeJoinRow.observed_at.desc(),
                               OutcomeJoinRow.id.desc()).limit(last)
    else:
        query = query.order_by(OutcomeJoinRow.created_at, OutcomeJoinRow.id)
    out: dict[int, Joined] = {}
    with registry.reading() as session:
        for v, actual, pred, probs, created, observed, segments in session.execute(
                query.execution_options(yield_per=5000)):
            j = out.setdefault(v, Joined())
            created, observed = _utc(created), _utc(observed)
            j.y.append(actual["value"])
            j.labels.append((pred or {}).get("value"))
            j.probs.append(probs)
            j.scored_at.append(created)  # type: ignore[arg-type]
            j.delay_hours.append((observed - created).total_seconds() / 3600)  # type: ignore
            j.segments.append(segments or {})
    if last is not None:
        for j in out.values():
            order = sorted(range(len(j)), key=lambda i: j.scored_at[i])
            taken = j.take(order)
            j.__dict__.update(taken.__dict__)
    return out


def metrics_of(signature: Signature, rows: Joined) -> dict[str, Any]:
    """The holdout's metrics on joined rows (empty when nothing matched)."""
    if not len(rows):
        return {}
    output = signature.output
    classes = list(output.classes or ())
    if output.kind == "regression":
        return label_metrics("regression", [], np.asarray(rows.y, dtype=float),
                             np.asarray(rows.labels, dtype=float), None)
    probs = None
    if classes and all(p is not None and len(p) == len(classes) for p in rows.probs):
        probs = np.asarray(rows.probs, dtype=float)
    return label_metrics("classification", classes, np.asarray(rows.y, dtype=object),
                         np.asarray(rows.labels, dtype=object), probs)


def _delay(rows: Joined) -> dict[str, float] | None:
    if not len(rows):
        return None
    hours = np.asarray(rows.delay_hours)
    return {"median_hours": float(np.median(hours)), "p90_hours": float(np.quantile(hours, 0.9)),
            "max_hours": float(hours.max())}


def _windows(signature: Signature, rows: Joined, hours: float) -> list[dict[str, Any]]:
    """Metrics per window of prediction time; windows are aligned to multiples of ``hours``
    since the Unix epoch (daily windows start at midnight UTC)."""
    step = timedelta(hours=hours)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    buckets: dict[int, list[int]] = {}
    for i, at in enumerate(rows.scored_at):
        buckets.setdefault((at - epoch) // step, []).append(i)
    return [{"start": (epoch + n * step).isoformat(), "end": (epoch + (n + 1) * step).isoformat(),
             "matched": len(picks), "metrics": _safe_metrics(signature, rows.take(picks))}
            for n, picks in sorted(buckets.items())]


def _segments(signature: Signature, rows: Joined) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    names = [c.name for c in signature.inputs if c.type == "string" or c.is_categorical]
    for name in names:
        groups: dict[Any, list[int]] = {}
        for i, seg in enumerate(rows.segments):
            if name in seg:
                groups.setdefault(seg[name], []).append(i)
        if groups:
            out[name] = [{"value": value, "matched": len(picks),
                          "metrics": _safe_metrics(signature, rows.take(picks))}
                         for value, picks in sorted(groups.items(), key=lambda kv: str(kv[0]))
                         if len(picks) >= MIN_SEGMENT_ROWS]
    return out


def _safe_metrics(signature: Signature, rows: Joined) -> dict[str, Any]:
    """A segment may hold one class only: the metrics that need two are left out."""
    try:
        return metrics_of(signature, rows)
    except ValueError:
        return {}


def quality(registry: Registry, name: str, *, version: int | None = None,
            since: datetime | None = None, until: datetime | None = None,
            last: int | None = None, window_hours: float = 24.0,
            segments: bool = True) -> dict[str, Any]:
    """Live quality of ``name`` per version, against each version's holdout metrics."""
    if window_hours <= 0:
        raise InvalidInput("window_hours must be positive")
    model = registry.get_model(name)
    versions = {v.version: v for v in model.versions}
    scored = _scored_counts(registry, name, since, until)
    out = []
    for v, rows in sorted(joined_rows(registry, name, version=version, since=since,
                                      until=until, last=last).items()):
        info = versions.get(v)
        if info is None:
            continue
        signature = Signature.from_dict(info.signature)
        item: dict[str, Any] = {
            "version": v, "scored": scored.get(v, 0), "matched": len(rows),
            "metrics": _safe_metrics(signature, rows),
            "holdout": {k: val for k, val in info.metrics.items()
                        if isinstance(val, (int, float))},
            "delay": _delay(rows), "windows": _windows(signature, rows, window_hours)}
        if signature.output.kind == "classification" and \
                all(p is not None for p in rows.probs):
            item["calibration"] = calibration_bins(
                np.asarray(rows.y, dtype=object), np.asarray(rows.probs, dtype=float),
                list(signature.output.classes or ()))
        if segments:
            item["segments"] = _segments(signature, rows)
        out.append(item)
    return {"model": name, "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "last": last,
            "window_hours": window_hours, "versions": out}


def quality_windows(registry: Registry, window_hours: float = 24.0) -> list[dict[str, Any]]:
    """Every model's live quality per version and window, flat (what a BI table holds): model,
    version, window start and end, matched outcomes, the window's metrics and the version's
    holdout metrics; the windows are :func:`quality`'s."""
    with registry.reading() as session:
        names = sorted(session.scalars(select(OutcomeJoinRow.model_name).where(
            OutcomeJoinRow.actual.is_not(None)).distinct()))
    out = []
    for name in names:
        try:
            found = quality(registry, name, window_hours=window_hours, segments=False)
        except NotFound:  # removed since
            continue
        for item in found["versions"]:
            out += [{"model": name, "version": item["version"],
                     "start": datetime.fromisoformat(w["start"]),
                     "end": datetime.fromisoformat(w["end"]), "matched": w["matched"],
                     "metrics": w["metrics"], "holdout": item["holdout"]}
                    for w in item["windows"]]
    return out


def _scored_counts(registry: Registry, name: str, since: datetime | None,
                   until: datetime | None) -> dict[int, int]:
    query = select(OutcomeJoinRow.version, func.count()).where(
        OutcomeJoinRow.model_name == name).group_by(OutcomeJoinRow.version)
    if since is not None:
        query = query.where(OutcomeJoinRow.created_at >= since)
    if until is not None:
        query = query.where(OutcomeJoinRow.created_at < until)
    with registry.reading() as session:
        return {v: int(n) for v, n in session.execute(query)}
