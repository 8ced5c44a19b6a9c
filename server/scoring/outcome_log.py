"""The outcome join log: for every scored row of a model with outcome tracking on, what is needed
to join the actual outcome later (prediction id, business key, version, time, prediction,
probabilities and the categorical inputs for per-segment quality).

Unlike the prediction log this is not a sample: an outcome can only be joined to a row that was
kept. The scoring path only takes references (the result's arrays, the request's keys) and
appends them to a bounded queue; the rows are built and bulk-inserted on the deployment worker's
thread (:meth:`OutcomeLog.flush`), so a tracked request costs a few microseconds more, not a
database write. Retention (``registry.retention``) prunes rows past ``outcome_days``.
"""
from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from ..registry.schema import OutcomeJoinRow
from ..registry.service import Registry
from ..types import ScoreResult

log = logging.getLogger(__name__)
MAX_PENDING_ROWS = 500_000  # rows waiting for the database; past it the oldest requests go
INSERT_CHUNK = 5000


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def prediction_id(request_id: str, row: int) -> str:
    """A scored row's id: the request's id and the row's position in the request."""
    return f"{request_id}-{row}"


@dataclass(frozen=True)
class Tracking:
    """A model's outcome tracking: on, with an optional business key column (never an input)."""

    key: str | None = None

    @classmethod
    def from_monitoring(cls, monitoring: dict[str, Any]) -> "Tracking | None":
        settings = monitoring.get("outcomes") or {}
        if not settings.get("enabled"):
            return None
        return cls(key=settings.get("key") or None)


@dataclass
class _Pending:
    """One request's tracked rows, as references into its result (expanded on flush)."""

    model: str
    version: int
    request_id: str
    at: datetime
    source: ScoreResult
    picks: np.ndarray       # indices into source.labels
    request_rows: np.ndarray  # the same rows' positions in the request
    keys: list[Any] | None

    def __len__(self) -> int:
        return len(self.picks)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _key(value: Any) -> str | None:
    """Business keys are compared as text (a CSV of outcomes has no types)."""
    value = _plain(value)
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)[:255]


class OutcomeLog:
    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        """``clock`` stamps each tracked row (tests pass a simulated one)."""
        self.clock = clock
        self._pending: deque[_Pending] = deque()
        self._rows = 0
        self._lock = threading.Lock()

    def offer(self, result: ScoreResult, request_id: str, keys: list[Any] | None,
              window: tuple[int, int] | None = None, source: ScoreResult | None = None,
              ) -> list[str | None]:
        """Keep ``result``'s scored rows for joining; their prediction ids, one per input row
        (None where a row was not scored). ``source``/``window``: a micro-batch's whole result
        and this request's rows in it."""
        src = source if source is not None else result
        picks = np.arange(len(src.positions))
        rows = np.asarray(src.positions)
        if window is not None:
            inside = (rows >= window[0]) & (rows < window[0] + window[1])
            picks, rows = picks[inside], rows[inside] - window[0]
        ids: list[str | None] = [None] * result.n_rows
        for row in rows.tolist():
            ids[row] = prediction_id(request_id, row)
        if len(picks):
            entry = _Pending(result.model, result.version, request_id, self.clock(), src, picks,
                             rows, keys)
            with self._lock:
                self._pending.append(entry)
                self._rows += len(entry)
                while self._rows > MAX_PENDING_ROWS and len(self._pending) > 1:
                    dropped = self._pending.popleft()
                    self._rows -= len(dropped)
                    log.warning("outcome join log full: dropped %d rows of request %s",
                                len(dropped), dropped.request_id)
        return ids

    @property
    def pending_rows(self) -> int:
        return self._rows

    @staticmethod
    def _rows_of(entry: _Pending) -> list[dict[str, Any]]:
        src = entry.source
        labels = src.labels[entry.picks].tolist()
        probs = src.probs[entry.picks].tolist() if src.probs is not None else None
        segments: dict[str, list[Any]] = {}
        checked = src.checked
        if checked is not None and src.scored is not None:
            at = np.asarray(src.scored)[entry.picks]
            for name, values in checked.columns.items():
                if values.dtype == object:  # text inputs: the categorical ones
                    segments[name] = [_plain(v) for v in values[at].tolist()]
        out = []
        for i, row in enumerate(entry.request_rows.tolist()):
            out.append({
                "model_name": entry.model, "version": entry.version,
                "prediction_id": prediction_id(entry.request_id, row),
                "business_key": _key(entry.keys[row]) if entry.keys is not None else None,
                "created_at": entry.at, "prediction": {"value": _plain(labels[i])},
                "probabilities": probs[i] if probs is not None else None,
                "segments": {name: values[i] for name, values in segments.items()}})
        return out

    def flush(self, registry: Registry) -> int:
        """Write what is queued, in chunks; on a database error the rest stays queued."""
        written = 0
        while True:
            with self._lock:
                if not self._pending:
                    return written
                batch: list[_Pending] = []
                size = 0
                while self._pending and size < INSERT_CHUNK:
                    batch.append(self._pending.popleft())
                    size += len(batch[-1])
                self._rows -= size
            try:
                rows = [row for entry in batch for row in self._rows_of(entry)]
                with registry.writing() as session:
                    session.bulk_insert_mappings(OutcomeJoinRow, rows)
            except Exception:
                with self._lock:
                    self._pending.extendleft(reversed(batch))
                    self._rows += size
                raise
            written += len(rows)
