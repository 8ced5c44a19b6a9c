"""A canary judged on recorded outcomes, when enough of them arrive while it runs.

With ``canary.outcomes`` in the policy, the canary's predictions made since the canary opened
that have a recorded outcome are its live quality. Once there are ``min_outcomes`` of them, its
live metric (``metric``; by default ROC AUC for two classes, accuracy for more, R² for
regressors) may be worse than production's by at most ``max_drop``. Production's figure is its
own live metric over the same period when it has as many matched outcomes, else its holdout
metric from registration. Too few outcomes, or a figure that cannot be computed (one class only
among the actuals), decide nothing: the error and latency rules stay in charge, and the decision
says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from ..errors import InvalidInput
from ..registry.deployments import Rollout
from ..registry.schema import OutcomeJoinRow
from ..registry.service import Registry
from ..scoring.metrics import LOWER_IS_BETTER, METRICS_BY_KIND
from ..telemetry.outcome_alerts import AlertRule
from ..telemetry.outcomes import joined_rows, metrics_of
from ..types import Signature
from .policy import Policy

PASSED, FAILED, TOO_FEW, UNJUDGED = "passed", "failed", "too_few", "unjudged"


@dataclass
class Verdict:
    """What the outcomes say: ``passed``, ``failed`` (roll back), ``too_few`` or ``unjudged``
    (the error and latency rules decide); ``detail`` goes into the decision's event."""

    status: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


def metric_for(metric: str | None, signature: Signature) -> str:
    """The configured metric, or the model kind's default (as the outcome alert's)."""
    return AlertRule(metric=metric).metric_for(signature)


def check_fits(policy: Policy, signature: Signature | None) -> None:
    """Refuse a ``canary.outcomes.metric`` the model's kind does not have (r2 for a classifier)."""
    outcomes = policy.canary.outcomes
    if outcomes is None or outcomes.metric is None or signature is None:
        return
    kind = signature.output.kind
    if outcomes.metric not in METRICS_BY_KIND.get(kind, ()):
        raise InvalidInput(f"policy 'canary.outcomes.metric' {outcomes.metric!r} is not a "
                           f"{kind} metric; one of {', '.join(METRICS_BY_KIND.get(kind, ()))}")


def _matched(registry: Registry, r: Rollout) -> int:
    """The canary's predictions since it opened that have an outcome (one indexed count)."""
    o = OutcomeJoinRow
    with registry.reading() as session:
        return int(session.scalar(select(func.count()).where(
            o.model_name == r.model, o.version == r.version, o.created_at >= r.started_at,
            o.actual.is_not(None), o.observed_at.is_not(None))) or 0)


def _live(registry: Registry, r: Rollout, version: int, signature: Signature,
          metric: str) -> tuple[float | None, int]:
    rows = joined_rows(registry, r.model, version=version, since=r.started_at).get(version)
    if rows is None:
        return None, 0
    try:
        value = metrics_of(signature, rows).get(metric)
    except ValueError:  # one class only among the actuals
        value = None
    return (float(value) if value is not None else None), len(rows)


def judge(registry: Registry, r: Rollout) -> Verdict | None:
    """The outcomes' verdict on canary ``r``; None when its policy asks for none."""
    config = r.config.get("outcomes")
    if not config:
        return None
    min_outcomes, max_drop = int(config["min_outcomes"]), float(config["max_drop"])
    candidate = registry.get_version(r.model, r.version)
    signature = Signature.from_dict(candidate.signature)
    metric = metric_for(config.get("metric"), signature)
    detail: dict[str, Any] = {"metric": metric, "max_drop": max_drop, "min_outcomes": min_outcomes}
    matched = _matched(registry, r)
    if matched < min_outcomes:
        detail.update(status=TOO_FEW, canary={"version": r.version, "matched": matched})
        return Verdict(TOO_FEW, f"outcomes too few ({matched} of {min_outcomes} matched): "
                                f"decided by error rate and latency", detail)
    value, matched = _live(registry, r, r.version, signature, metric)
    detail["canary"] = {"version": r.version, "matched": matched, "value": value}
    if value is None:
        detail["status"] = UNJUDGED
        return Verdict(UNJUDGED, f"{metric} cannot be computed on the canary's {matched} "
                                 f"outcomes: decided by error rate and latency", detail)
    base, source, base_matched = None, "holdout", 0
    if r.baseline is not None:
        base_info = registry.get_version(r.model, r.baseline)
        live, base_matched = _live(registry, r, r.baseline, signature, metric)
        if live is not None and base_matched >= min_outcomes:
            base, source = live, "live"
        elif isinstance(base_info.metrics.get(metric), (int, float)):
            base = float(base_info.metrics[metric])
    detail["production"] = {"version": r.baseline, "matched": base_matched, "value": base,
                            "source": source}
    if base is None:
        detail["status"] = UNJUDGED
        return Verdict(UNJUDGED, f"production v{r.baseline} has no {metric} to compare with "
                                 f"(too few outcomes, no holdout): decided by error rate and "
                                 f"latency", detail)
    drop = (value - base) if metric in LOWER_IS_BETTER else (base - value)
    detail["drop"] = drop
    compared = (f"canary v{r.version}'s live {metric} {value:.4f} over {matched} outcomes vs "
                f"production v{r.baseline}'s {source} {base:.4f}")
    if drop > max_drop:
        detail["status"] = FAILED
        return Verdict(FAILED, f"{compared}: worse by {drop:.4f}, more than {max_drop}", detail)
    detail["status"] = PASSED
    return Verdict(PASSED, compared, detail)
