"""The status dashboard's content: system health and, per model, deployment, traffic, latency,
errors and drift, with charts. Rendered server-side; it refreshes itself."""
from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from typing import Any, Collection

from sqlalchemy import text

from .. import __version__
from ..config import Settings
from ..registry.deployments import Deployments
from ..registry.service import Registry
from ..telemetry.monitoring import model_monitoring
from .charts import line_chart
from .live import active_workers, series, summary
from .outcomes import outcome_section

STARTED = time.time()
DEPLOYMENT_EVENTS = {"registered", "gates_passed", "gates_failed", "promoted", "rolled_back",
                     "canary_started", "canary_finished", "shadow_started", "shadow_finished",
                     "watch_started", "watch_finished", "awaiting_promotion", "policy_changed"}
PROBLEM_EVENTS = {"gates_failed", "rolled_back", "drift_detected", "drift_watch", "drop_failed",
                  "outcome_quality_degraded"}


def _health(registry: Registry, settings: Settings) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with registry.reading() as session:
            session.execute(text("SELECT 1"))
        db = {"ok": True, "ms": (time.perf_counter() - start) * 1000,
              "backend": registry.engine.dialect.name}
    except Exception as exc:
        db = {"ok": False, "error": type(exc).__name__, "backend": registry.engine.dialect.name}
    try:
        usage = shutil.disk_usage(settings.home)
        disk = {"free_gb": usage.free / 2**30, "used_pct": 100 * usage.used / usage.total,
                "ok": usage.free / usage.total > 0.05}
    except OSError:
        disk = {"ok": False}
    uptime = time.time() - STARTED
    return {"database": db, "disk": disk, "uptime": uptime, "version": __version__,
            "workers": active_workers(registry) if db["ok"] else 0, "pid": os.getpid(),
            "pending": Deployments(registry).pending_count() if db["ok"] else None}


def dashboard(registry: Registry, settings: Settings,
              only: Collection[str] | None = None) -> dict[str, Any]:
    """With ``only`` (a caller's per-model access), just those models and their events."""
    models = []
    deployments = Deployments(registry)
    for model in registry.list_models(only):
        s = series(registry, model.name)
        try:
            drift = model_monitoring(registry, model.name)["status"] if model.production else None
        except Exception:
            drift = "unknown"
        rollouts = []
        for r in deployments.open_rollouts(model.name):
            t = deployments.traffic(model.name, r.version, r.started_at)
            rollouts.append({"kind": r.kind, "version": r.version, "baseline": r.baseline,
                             "started_at": r.started_at, "config": r.config,
                             "requests": t.requests, "error_rate": t.error_rate,
                             "agreement": t.agreement})
        events = registry.events(model.name, limit=100)
        models.append({
            "name": model.name, "description": model.description,
            "production": model.production.version if model.production else None,
            "policy": model.policy.get("policy", "auto"), "summary": summary(s), "drift": drift,
            "rollouts": rollouts,
            "timeline": [e for e in events if e.kind in DEPLOYMENT_EVENTS][:8],
            "charts": [
                line_chart("Requests per minute", s.labels, {"requests": s.requests}),
                line_chart("Latency (ms)", s.labels, {"p50": s.p50, "p95": s.p95}, " ms"),
                line_chart("Errors (% of requests)", s.labels, {"errors": s.errors}, "%"),
            ],
            "outcomes": outcome_section(registry, model.name, last=5000)})
    recent = registry.events(limit=200, only=only)
    return {"health": _health(registry, settings), "models": models,
            "events": recent[:15], "problems": [e for e in recent if e.kind in PROBLEM_EVENTS][:10],
            "now": datetime.now(timezone.utc)}
