"""Cross-request micro-batching: small requests for the same model version that arrive together in
one worker share one model call.

Why: a compiled model scores a row in tens of microseconds, but every call also pays fixed costs
(checking the input, building the arrays, entering the runtime). Under concurrent load those fixed
costs dominate, so concurrent one-row requests are worth scoring together.

How: per key (model, version, options) at most one call runs at a time. A request that finds no
call running leads, and requests that arrive while a call runs queue up; when it ends, the first
of them leads the next call for all queued requests (up to ``max_rows`` rows). A leader may wait
up to ``wait_seconds`` for more requests before calling, but only while its key is busy: when the
key's last call had company (it served several requests, or more were queued behind it). A
request alone, as every request at concurrency 1 is, leads at once and adds no latency; under
load the short wait gathers more requests into each call (docs/performance.md).

Each queued request sleeps on its own lock, and a finished call wakes exactly the requests it
answered plus the next leader: one wake-up per request. (A shared condition woke every waiting
thread after every call, and under load most of them only went back to sleep: thread switches
and GIL hand-offs for nothing.)

This module only coordinates threads; what a joint call means is the caller's ``run`` function,
which returns one outcome per item, or None for an item that must be handled on its own.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass
class _Ticket(Generic[Item]):
    item: Item
    rows: int
    done: bool = False
    outcome: Any = None
    # held while the ticket waits; released once, when it is answered or must lead
    wake: Any = None


@dataclass
class _Lane:
    queue: deque[_Ticket[Any]] = field(default_factory=deque)
    busy: bool = False


class MicroBatcher(Generic[Item, Outcome]):
    def __init__(self, max_rows: int = 256, wait_seconds: float = 0.0) -> None:
        self.max_rows = max_rows
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # wakes a leader waiting for more
        self._lanes: dict[Hashable, _Lane] = {}
        self._busy: dict[Hashable, int] = {}  # keys whose last call had company: rows it saw
        self.calls = 0  # joint calls made (tests read it)

    def submit(self, key: Hashable, item: Item, rows: int,
               run: Callable[[list[Item]], Sequence[Outcome | None]]) -> Outcome | None:
        """``item``'s outcome from a call shared with whatever else is queued under ``key``;
        None when ``run`` said it must be handled alone (or the joint call failed)."""
        ticket: _Ticket[Item] = _Ticket(item, rows)
        with self._lock:
            lane = self._lanes.setdefault(key, _Lane())
            lane.queue.append(ticket)
            queued = lane.busy
            if queued:
                ticket.wake = threading.Lock()
                ticket.wake.acquire()
                if self.wait_seconds > 0:
                    self._arrived.notify_all()  # a waiting leader may now have a full batch
            else:
                lane.busy = True
        if queued:
            ticket.wake.acquire()  # answered, or handed the lead
            if ticket.done:
                return ticket.outcome
        with self._lock:  # leading: the lane is busy on this ticket's behalf
            if key in self._busy:
                self._wait_for_more(lane, self._busy[key])
            batch = self._take(lane)
        outcomes: Sequence[Outcome | None] = [None] * len(batch)
        try:
            outcomes = run([t.item for t in batch])
        except Exception:  # noqa: BLE001 - every item is then tried alone, with its own error
            pass
        finally:
            with self._lock:
                self.calls += 1
                for t, outcome in zip(batch, outcomes):
                    t.outcome, t.done = outcome, True
                following = lane.queue[0] if lane.queue else None
                if following is not None or len(batch) > 1:
                    # the requests this call saw: its own, and those that queued meanwhile
                    self._busy[key] = sum(t.rows for t in batch) + sum(t.rows for t in lane.queue)
                else:
                    self._busy.pop(key, None)
                if following is None:  # nobody waits: the lane is free again
                    lane.busy = False
                    self._lanes.pop(key, None)
            for t in batch:
                if t is not ticket:
                    t.wake.release()
            if following is not None:  # the oldest waiting request leads the next call
                following.wake.release()
        return ticket.outcome

    def _wait_for_more(self, lane: _Lane, last_rows: int) -> None:
        """Hold the lead up to ``wait_seconds`` until as many rows are queued as the key's last
        call saw (its own and those that queued behind it: the load's own concurrency; at most
        ``max_rows``). Lock held; only for a key that is busy."""
        if self.wait_seconds <= 0:
            return
        deadline = time.monotonic() + self.wait_seconds
        while sum(t.rows for t in lane.queue) < min(last_rows, self.max_rows):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.wait(left)

    def _take(self, lane: _Lane) -> list[_Ticket[Any]]:
        """The queued tickets, oldest first, up to ``max_rows`` rows (at least one; lock held)."""
        batch = [lane.queue.popleft()]
        rows = batch[0].rows
        while lane.queue and rows + lane.queue[0].rows <= self.max_rows:
            rows += lane.queue[0].rows
            batch.append(lane.queue.popleft())
        return batch
