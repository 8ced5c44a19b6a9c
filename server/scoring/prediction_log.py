"""The prediction log: a sample of scored rows (inputs as the model saw them, the prediction, the
version, client and latency), for drift monitoring and the OData feed.

Sampling happens on the scoring path: one random draw per request, then the sampled rows are
copied; writing them happens on the deployment worker's thread, in batches. Each worker logs at
most ``rows_per_second`` rows a second (a token bucket holding one second's worth): under heavy
traffic the share of requests sampled falls, so the log stays a sample instead of a copy of the
traffic, and neither the copying on the scoring path nor the database writes grow with the
load. The queue is bounded: when the database is away, the oldest samples are dropped, never the
requests.

It belongs to the scoring package because the scorer samples into it; drift monitoring
(``server.telemetry``) and the deployment worker read and flush it from above.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select

from ..registry.database import rows_changed
from ..registry.schema import PredictionRow
from ..registry.service import Registry

ROWS_PER_REQUEST = 50
MAX_PENDING = 20_000


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class PredictionLog:
    def __init__(self, rows_per_second: float = 0.0, seed: int | None = None) -> None:
        """``rows_per_second``: this worker's budget of logged rows (0: no limit). ``seed`` makes
        the sample repeatable (tests that assert on what the sample shows)."""
        self.rng = np.random.default_rng(seed)
        self._pending: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING)
        self._lock = threading.Lock()
        self.rows_per_second = rows_per_second
        self._allowance = rows_per_second
        self._refilled = time.monotonic()

    def _granted(self, wanted: int) -> int:
        """How many of ``wanted`` rows the budget allows now (the bucket refills continuously
        and holds at most one second's worth)."""
        if self.rows_per_second <= 0:
            return wanted
        with self._lock:
            now = time.monotonic()
            self._allowance = min(self.rows_per_second, self._allowance
                                  + (now - self._refilled) * self.rows_per_second)
            self._refilled = now
            granted = min(wanted, int(self._allowance))
            self._allowance -= granted
            return granted

    def offer(self, rate: float, model: str, version: int, result: Any, latency: float,
              client: str, request_id: str, window: tuple[int, int] | None = None) -> None:
        """Keep some of ``result``'s rows, with probability ``rate`` per request. ``window``
        (start, count) limits it to one request's input rows of a micro-batch's result."""
        ok = getattr(result, "scored", None)
        if rate <= 0 or ok is None or len(ok) == 0 or random.random() >= rate:
            return
        checked = getattr(result, "checked", None)
        if checked is None:
            return
        if window is not None:
            inputs = result.input_rows[ok]
            ok = ok[(inputs >= window[0]) & (inputs < window[0] + window[1])]
            if len(ok) == 0:
                return
        wanted = self._granted(min(len(ok), ROWS_PER_REQUEST))
        if wanted == 0:
            return
        # a random subset, not the first rows: inputs sorted by anything would bias the sample
        take = ok if len(ok) <= wanted else np.sort(
            self.rng.choice(ok, wanted, replace=False))
        picked = {name: values[take].tolist() for name, values in checked.columns.items()}
        rows = [dict(zip(picked, values)) for values in zip(*picked.values())]
        positions = result.input_rows[take]
        now = datetime.now(timezone.utc)
        entries = []
        for inputs, pos in zip(rows, positions.tolist()):
            probs = result.probabilities[pos] if result.probabilities is not None else None
            entries.append({
                "model_name": model, "version": version, "created_at": now, "client": client,
                "request_id": request_id, "latency_ms": latency * 1000,
                "inputs": {k: _plain(v) for k, v in inputs.items()},
                "prediction": {"value": _plain(result.predictions[pos])},
                "probability": float(probs[-1]) if probs else None})
        with self._lock:
            self._pending.extend(entries)

    def flush(self, registry: Registry) -> int:
        with self._lock:
            entries = list(self._pending)
            self._pending.clear()
        if not entries:
            return 0
        try:
            with registry.writing() as session:
                session.bulk_insert_mappings(PredictionRow, entries)
        except Exception:
            with self._lock:
                self._pending.extendleft(reversed(entries))
            raise
        return len(entries)

    @staticmethod
    def prune(registry: Registry, days: float, max_rows: int) -> int:
        """Drop rows older than ``days`` and, past ``max_rows``, the oldest."""
        cutoff = datetime.now(timezone.utc) - timedelta(days=days)
        with registry.writing() as session:
            removed = rows_changed(session.execute(delete(PredictionRow)
                                                   .where(PredictionRow.created_at < cutoff)))
            count = session.scalar(select(func.count()).select_from(PredictionRow)) or 0
            if count > max_rows:
                edge = session.scalar(select(PredictionRow.id).order_by(PredictionRow.id.desc())
                                      .offset(max_rows).limit(1))
                if edge is not None:
                    removed += rows_changed(session.execute(delete(PredictionRow)
                                                            .where(PredictionRow.id <= edge)))
        return removed

    @staticmethod
    def window(registry: Registry, model: str, version: int, since: datetime,
               names: list[str], limit: int = 50_000) -> tuple[dict[str, list[Any]], list[Any]]:
        """One version's newest ``limit`` logged rows since ``since``, as input columns
        (``names``) and predictions. Streamed in chunks, keeping only the values: a window of
        50,000 whole rows held at once grew every worker by ~90 MB (found by the soak)."""
        columns: dict[str, list[Any]] = {name: [] for name in names}
        predictions: list[Any] = []
        query = (select(PredictionRow.inputs, PredictionRow.prediction)
                 .where(PredictionRow.model_name == model, PredictionRow.version == version,
                        PredictionRow.created_at >= since)
                 .order_by(PredictionRow.id.desc()).limit(limit)
                 .execution_options(yield_per=2000))
        with registry.reading() as session:
            for inputs, prediction in session.execute(query):
                inputs = inputs or {}
                for name, values in columns.items():
                    values.append(inputs.get(name))
                predictions.append((prediction or {}).get("value"))
        return columns, predictions
