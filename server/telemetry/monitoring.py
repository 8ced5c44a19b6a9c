"""Monitoring of a deployed model: drift and data quality over a window of the prediction log, and
the events raised when the status changes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ..registry.schema import DriftRow
from ..registry.service import Registry
from ..scoring.prediction_log import PredictionLog
from ..types import Signature
from .drift import monitor
from .outcome_sources import public_settings


def model_monitoring(registry: Registry, name: str, hours: float = 24.0) -> dict[str, Any]:
    """The production version's drift report over the last ``hours`` of logged predictions."""
    info = registry.get_version(name)
    since = datetime.now(timezone.utc) - timedelta(hours=hours)
    signature = Signature.from_dict(info.signature)
    columns, predictions = PredictionLog.window(registry, name, info.version, since,
                                                signature.names)
    report = monitor(signature, info.reference, columns, predictions)
    model = registry.get_model(name)
    report.update(model=name, version=info.version, window_hours=hours,
                  since=since.isoformat(),
                  logging=public_settings(model.monitoring) or {"log": True})
    return report


def _snapshot(registry: Registry, report: dict[str, Any]) -> None:
    """Keep the report's per-feature measures, for the OData feed and drift over time."""
    now = datetime.now(timezone.utc)
    items = list(report["features"].items()) + [("(prediction)", report["prediction"])]
    with registry.writing() as session:
        for feature, f in items:
            session.add(DriftRow(
                model_name=report["model"], version=report["version"], computed_at=now,
                feature=feature, status=f["status"], rows=report["rows"], psi=f.get("psi"),
                distance=f.get("wasserstein", f.get("jensen_shannon")),
                null_rate=f.get("null_rate"), out_of_range_rate=f.get("out_of_range_rate"),
                unknown_rate=f.get("unknown_rate")))


def check_drift(registry: Registry, actor: str = "drift monitor") -> list[tuple[str, str]]:
    """Snapshot every model's drift, and record an event for every model whose drift status
    changed since the last one."""
    changed = []
    for model in registry.list_models():
        if model.production is None:
            continue
        report = model_monitoring(registry, model.name)
        status = report["status"]
        if status == "insufficient data":
            continue
        _snapshot(registry, report)
        last = next((e for e in registry.events(model.name, limit=200)
                     if e.kind in ("drift_detected", "drift_cleared", "drift_watch")), None)
        previous = last.detail.get("status") if last else "ok"
        if status != previous:
            kind = {"drift": "drift_detected", "watch": "drift_watch"}.get(status, "drift_cleared")
            registry.record_event(model.name, kind, actor=actor,
                                  version=model.production.version, status=status,
                                  previous=previous)
            changed.append((model.name, status))
    return changed
