"""Alerts on live quality: a threshold relative to the holdout, over the last N outcomes.

A model's ``monitoring.outcomes.alert`` holds ``metric`` (default: ROC AUC for two classes,
accuracy for more, R² for regressors), ``max_drop`` (how much worse than the holdout it may get,
default 0.05), ``last`` (the window: the newest N outcomes of the production version, default
500) and ``min_outcomes`` (fewer matched outcomes decide nothing, default 100). Crossing the
threshold records one ``outcome_quality_degraded`` event (and its signed webhooks, through the
events outbox); coming back records one ``outcome_quality_recovered``. However many uploads
keep it degraded, nothing more is sent: the state is the latest of these two events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry.service import Registry
from ..scoring.metrics import LOWER_IS_BETTER
from ..types import Signature
from .outcomes import joined_rows, metrics_of

DEGRADED = "outcome_quality_degraded"
RECOVERED = "outcome_quality_recovered"
ACTOR = "outcome-monitor"


@dataclass(frozen=True)
class AlertRule:
    metric: str | None = None
    max_drop: float = 0.05
    last: int = 500
    min_outcomes: int = 100

    @classmethod
    def of(cls, monitoring: dict[str, Any]) -> "AlertRule":
        alert = (monitoring.get("outcomes") or {}).get("alert") or {}
        return cls(**{k: alert[k] for k in ("metric", "max_drop", "last", "min_outcomes")
                      if alert.get(k) is not None})

    def metric_for(self, signature: Signature) -> str:
        if self.metric:
            return self.metric
        out = signature.output
        if out.kind == "regression":
            return "r2"
        return "roc_auc" if len(out.classes or ()) == 2 else "accuracy"


def assess(registry: Registry, name: str) -> dict[str, Any] | None:
    """The production version's live metric over the rule's window against its holdout; None
    when there is nothing to judge (no production, no holdout metric, too few outcomes)."""
    model = registry.get_model(name)
    prod = model.production
    if prod is None:
        return None
    rule = AlertRule.of(model.monitoring)
    signature = Signature.from_dict(prod.signature)
    metric = rule.metric_for(signature)
    baseline = prod.metrics.get(metric)
    if not isinstance(baseline, (int, float)):
        return None
    rows = joined_rows(registry, name, version=prod.version, last=rule.last).get(prod.version)
    if rows is None or len(rows) < rule.min_outcomes:
        return None
    try:
        live = metrics_of(signature, rows).get(metric)
    except ValueError:  # one class only in the window: no AUC yet
        return None
    if live is None:
        return None
    drop = (live - baseline) if metric in LOWER_IS_BETTER else (baseline - live)
    return {"metric": metric, "live": live, "holdout": float(baseline), "drop": drop,
            "max_drop": rule.max_drop, "matched": len(rows), "last": rule.last,
            "version": prod.version, "degraded": drop > rule.max_drop}


def check(registry: Registry, name: str) -> str | None:
    """Assess, and record an event if the state crossed; the event's kind, or None."""
    verdict = assess(registry, name)
    if verdict is None:
        return None
    kind = DEGRADED if verdict["degraded"] else RECOVERED
    detail = {k: v for k, v in verdict.items() if k not in ("degraded", "version")}
    if registry.record_state_change(name, kind, (DEGRADED, RECOVERED), actor=ACTOR,
                                    version=verdict["version"], **detail):
        return kind
    return None
