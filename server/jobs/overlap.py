"""Overlapping a job's reading, scoring and writing.

Arrow's CSV reader and writer, onnxruntime and scikit-learn's tree code all release the GIL, so
reading the next chunk and writing the previous one while the current one is scored keeps both
cores busy. Each stage holds at most one chunk ahead, so memory stays bounded.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer.
    Exceptions reach the consumer at the point where they happened; a consumer that stops early
    stops the producer too."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer
            slots.put((_DONE, exc))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)


class OrderedWriter:
    """Runs ``write`` for each chunk on one background thread, in order, at most one chunk
    behind; the first failure is raised by the next :meth:`submit` or by :meth:`finish`."""

    def __init__(self, write: Callable[[Any], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")
        self._pending: Future[None] | None = None

    def submit(self, chunk: Any) -> None:
        self._wait()
        self._pending = self._pool.submit(self._write, chunk)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def finish(self) -> None:
        try:
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
