"""The deployment worker: one background thread per server process.

On each tick it refreshes this process's view of the deployments (loading new versions before they
serve), flushes traffic counters, processes pending versions, decides open rollouts, delivers
webhooks and scans the drop folder. Every step is guarded: a failure is logged and retried on the
next tick, and none of it runs on a request thread.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable

from ..background import ProcessThread
from ..config import Settings
from ..registry import retention
from ..registry.deployments import Deployments
from ..registry.service import Registry
from ..scoring.prediction_log import PredictionLog
from ..scoring.scorer import Scorer
from ..telemetry.monitoring import check_drift
from ..telemetry.outcome_source_runs import OutcomeSourceRunner
from .dropfolder import DropFolder
from .release import Releases
from .webhooks import WebhookSender

log = logging.getLogger(__name__)
GC_EVERY_SECONDS = 3600.0
DRIFT_EVERY_SECONDS = 300.0
GC_MIN_AGE_SECONDS = 3600.0  # younger files may belong to a registration still in flight
OUTCOME_SOURCES_EVERY_SECONDS = 60.0  # how often due outcome sources are looked for


class DeploymentWorker:
    def __init__(self, registry: Registry, scorer: Scorer, settings: Settings) -> None:
        self.registry = registry
        self.scorer = scorer
        self.settings = settings
        self.deployments = Deployments(registry)
        self._stop = threading.Event()
        self._thread = ProcessThread("deployment-worker", self._loop, self._new_identity)
        self._last_gc = time.monotonic()
        self._last_drift = time.monotonic()
        self._last_sources = 0.0  # the first tick looks for due outcome sources
        self.sources_thread: threading.Thread | None = None
        self._new_identity()

    def _new_identity(self) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.releases = Releases(self.registry, self.scorer.cache, self.id,
                                 self.settings.claim_timeout_seconds)
        self.webhooks = (WebhookSender(self.deployments, self.settings.webhook_secret)
                         if self.settings.webhook_urls else None)
        self.dropfolder = (DropFolder(self.settings.watch_dir, self.registry, self.settings)
                           if self.settings.watch_dir else None)
        self.outcome_sources = OutcomeSourceRunner(self.registry, self.id,
                                                   self.settings.job_roots,
                                                   self.settings.claim_timeout_seconds)
        self.sources_thread = None  # a forked process has not the parent's thread

    def flush_traffic(self) -> None:
        data = self.scorer.traffic.drain()
        users = self.scorer.traffic.drain_users()
        try:
            if data:
                self.deployments.add_traffic(self.id, data)
        except Exception:
            self.scorer.traffic.restore(data)
            self.scorer.traffic.restore_users(users)
            raise
        try:
            if users:
                self.deployments.add_user_traffic(users)
        except Exception:
            self.scorer.traffic.restore_users(users)
            raise

    def collect_garbage(self, min_age_seconds: float = GC_MIN_AGE_SECONDS) -> list[str]:
        """Remove artifact files no version refers to (left by a crash mid-registration)."""
        self._last_gc = time.monotonic()
        return self.registry.store.collect_garbage(self.registry.referenced_artifacts(),
                                                   min_age_seconds)

    def sweep_retention(self) -> dict[str, int]:
        """One bounded pass of every table's retention (traffic, drift, webhook deliveries)."""
        s = self.settings
        return retention.sweep(self.registry, retention.RetentionPolicy(
            traffic_minute_days=s.traffic_minute_days, traffic_days=s.traffic_days,
            drift_days=s.drift_days, webhook_days=s.webhook_delivery_days,
            outcome_days=s.outcome_days))

    def check_drift(self) -> list[tuple[str, str]]:
        self._last_drift = time.monotonic()
        return check_drift(self.registry)

    def start_outcome_sources(self) -> threading.Thread | None:
        """Read the due outcome sources in a thread of their own (a large first read must not
        hold up deployments); one at a time per process, and each source claimed, so one
        worker of all runs it. The thread, or None while the last one still runs."""
        self._last_sources = time.monotonic()
        if self.sources_thread is not None and self.sources_thread.is_alive():
            return None
        names = self.outcome_sources.models_with_sources()
        if not names:
            return None
        self.sources_thread = threading.Thread(target=self._run_outcome_sources, args=(names,),
                                               name="outcome-sources", daemon=True)
        self.sources_thread.start()
        return self.sources_thread

    def _run_outcome_sources(self, names: list[str]) -> None:
        try:
            self.outcome_sources.run_due(names)
        except Exception:
            log.exception("outcome sources failed; trying next round")

    def _claim(self, task: str, every: float) -> bool:
        """Whether this worker runs ``task`` this round: of all workers and hosts sharing the
        registry, the first to ask after the last holder's lease (90 % of the period) ran out."""
        try:
            return self.registry.claim_lease(task, self.id, every * 0.9)
        except Exception:
            log.exception("could not claim the %r lease; trying next round", task)
            return False

    def run_once(self) -> None:
        """One tick; safe to call directly (tests, the CLI)."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("refresh", lambda: self.scorer.deployments.refresh()),
            ("traffic", self.flush_traffic),
            ("prediction log", lambda: self.scorer.prediction_log.flush(self.registry)),
            ("outcome join log", lambda: self.scorer.outcome_log.flush(self.registry)),
            ("pipeline", self.releases.process_pending),
            ("rollouts", self.releases.evaluate_rollouts),
        ]
        if self.webhooks is not None:
            steps.append(("webhooks", self.webhooks.deliver_due))
        if self.dropfolder is not None:
            steps.append(("drop folder", self.dropfolder.scan))
        if time.monotonic() - self._last_sources > OUTCOME_SOURCES_EVERY_SECONDS:
            steps.append(("outcome sources", self.start_outcome_sources))
        if time.monotonic() - self._last_drift > DRIFT_EVERY_SECONDS:
            self._last_drift = time.monotonic()
            if self._claim("drift", DRIFT_EVERY_SECONDS):
                steps.append(("drift", self.check_drift))
        if time.monotonic() - self._last_gc > GC_EVERY_SECONDS:
            self._last_gc = time.monotonic()
            if self._claim("housekeeping", GC_EVERY_SECONDS):
                steps.append(("artifact garbage", self.collect_garbage))
                steps.append(("prediction log retention", lambda: PredictionLog.prune(
                    self.registry, self.settings.prediction_log_days,
                    self.settings.prediction_log_max_rows)))
                steps.append(("retention", self.sweep_retention))
        # what this tick decided serves from this process at once, not a refresh interval later
        steps.append(("refresh", lambda: self.scorer.deployments.refresh(force=True)))
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("deployment worker step %r failed; retrying next tick", name)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.tick_seconds):
            self.run_once()

    def ensure_started(self) -> None:
        """Start the thread in this process (once; again, with a new identity, after a fork)."""
        self._thread.ensure_started()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.thread is not None:
            self._thread.thread.join(timeout=10)
