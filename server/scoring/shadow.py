"""Shadow rollouts: a copy of production requests scored by the candidate, off the response path."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import ScoreBridgeError
from ..types import RawTable, ScoreOptions, ScoreResult
from .predict import score_with
from .runtime import LoadedModel
from .traffic import TrafficRecorder


class ShadowRunner:
    """Scores a copy of production requests with the shadow candidate, off the response path.

    One background thread and a bounded backlog: when the candidate cannot keep up, copies are
    dropped rather than slowing production. Agreement (same label, or a value within tolerance)
    is counted per request.
    """

    MAX_BACKLOG = 64

    def __init__(self, traffic: TrafficRecorder) -> None:
        self.traffic = traffic
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._backlog = threading.BoundedSemaphore(self.MAX_BACKLOG)
        self.dropped = 0

    def submit(self, model: LoadedModel, table: RawTable, served: ScoreResult,
               tolerance: float) -> None:
        if not self._backlog.acquire(blocking=False):
            self.dropped += 1
            return
        future = self._pool.submit(self._compare, model, table, served, tolerance)
        future.add_done_callback(lambda _: self._backlog.release())

    def _compare(self, model: LoadedModel, table: RawTable, served: ScoreResult,
                 tolerance: float) -> None:
        start = time.perf_counter()
        try:
            shadow = score_with(model, table, ScoreOptions(probabilities=False, errors="row"))
        except ScoreBridgeError:
            self.traffic.record(model.name, model.version, time.perf_counter() - start, 0, True)
            return
        self.traffic.record(model.name, model.version, time.perf_counter() - start,
                            shadow.rows_scored, error=shadow.model_failures > 0)
        compared = agreed = 0
        for a, b in zip(shadow.predictions, served.predictions):
            if a is None or b is None:
                continue
            compared += 1
            if isinstance(a, float) or isinstance(b, float):
                agreed += abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(b)))
            else:
                agreed += a == b
        self.traffic.record_shadow(model.name, model.version, compared, agreed)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait for the backlog to empty (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._backlog._value == self.MAX_BACKLOG:
                return
            time.sleep(0.01)
