"""A daemon thread that runs once per process: started on demand, and again in a process forked
after it started (gunicorn --preload), where the parent's threads do not exist."""
from __future__ import annotations

import os
import threading
from typing import Callable


class ProcessThread:
    def __init__(self, name: str, target: Callable[[], None],
                 on_fork: Callable[[], None] | None = None) -> None:
        self.name = name
        self.target = target
        self.on_fork = on_fork
        self._pid: int | None = None
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._pid is not None and self.on_fork is not None:
                self.on_fork()
            self._pid = os.getpid()
            self.thread = threading.Thread(target=self.target, name=self.name, daemon=True)
            self.thread.start()
