"""The job runner: one background thread per server process that starts due schedules and runs
queued batch jobs.

It has a module of its own because it drives both the jobs (:mod:`.service`) and the schedules
(:mod:`.schedules`, which submit jobs): kept in ``service`` it made the two import each other.
"""
from __future__ import annotations

import logging
import time

from ..background import ProcessThread
from .schedules import Schedules
from .service import Jobs

log = logging.getLogger(__name__)


class JobRunner:
    """One background thread per server process that runs queued jobs, one at a time."""

    def __init__(self, jobs: Jobs, worker: str, poll_seconds: float = 0.5) -> None:
        self.jobs = jobs
        self.worker = worker
        self.poll_seconds = poll_seconds
        self._thread = ProcessThread("job-runner", self._loop)

    def run_pending(self) -> list[str]:
        """Start due schedules, recover stale jobs, then run queued ones until none is left
        (tests call this)."""
        Schedules(self.jobs.registry, self.jobs).run_due()
        self.jobs.recover()
        done = []
        while (job := self.jobs.claim(self.worker)) is not None:
            done.append(self.jobs.run(job))
        return done

    def _loop(self) -> None:
        while True:
            try:
                self.run_pending()
                self.jobs.expire()
            except Exception:
                log.exception("job runner failed; retrying")
            time.sleep(self.poll_seconds)

    def ensure_started(self) -> None:
        self._thread.ensure_started()
