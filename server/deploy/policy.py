"""Deployment policy per model: how a version that passed its gates reaches production.

- ``manual``: register only; a person promotes.
- ``auto``: every version that passes the gates becomes production (then watched, and rolled back
  automatically if its error rate crosses the threshold).
- ``canary``: the version serves a share of traffic until enough requests or time have passed, and is
  promoted if its error rate and latency stay within limits of production's, rolled back otherwise.
  With ``canary.outcomes`` it must also keep its live quality from recorded outcomes, when enough
  arrive in time (:mod:`.canary_outcomes`).
- ``shadow``: the version scores a copy of production traffic off the response path; agreement is
  recorded; a person promotes (or, if configured, it is promoted at a given agreement rate).

Four-eyes (``approval.required``): whatever the mode, a version reaches production only when a
person promotes it after someone other than the person who registered it has approved it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..errors import InvalidInput
from ..scoring.metrics import METRICS

MODES = ("manual", "auto", "canary", "shadow")


@dataclass(frozen=True)
class GateConfig:
    metric: str | None = None          # default: roc_auc (binary), accuracy (multiclass), r2
    tolerance: float = 0.01            # how much worse than production the metric may be
    max_latency_ms: float = 1000.0     # single-row latency limit (median)
    latency_factor: float = 3.0        # ... and at most this many times production's


@dataclass(frozen=True)
class CanaryOutcomes:
    """Outcome-based quality for a canary (``canary.outcomes``; null, the default: off)."""

    metric: str | None = None          # default: roc_auc (binary), accuracy (multiclass), r2
    max_drop: float = 0.02             # how much worse than production's it may be
    min_outcomes: int = 200            # fewer matched outcomes: error and latency rules decide


@dataclass(frozen=True)
class CanaryConfig:
    share: float = 0.1
    min_requests: int = 100
    max_seconds: float = 600.0
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.5
    outcomes: CanaryOutcomes | None = field(default=None, metadata={"section": CanaryOutcomes})


@dataclass(frozen=True)
class ShadowConfig:
    share: float = 1.0                 # fraction of production requests copied to the candidate
    tolerance: float = 1e-6            # regression values this close (relative) agree
    min_requests: int = 100
    promote_at_agreement: float | None = None


@dataclass(frozen=True)
class RollbackConfig:
    watch_seconds: float = 300.0       # how long a freshly promoted version is watched
    min_requests: int = 20
    max_error_rate: float = 0.05


@dataclass(frozen=True)
class ApprovalConfig:
    required: bool = False             # four-eyes: a second person approves before promotion


@dataclass(frozen=True)
class Policy:
    policy: str = "auto"
    gates: GateConfig = field(default_factory=GateConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    approval: ApprovalConfig = field(default_factory=ApprovalConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Policy":
        """A policy from stored or requested JSON; unknown or mistyped fields are refused."""
        data = dict(data or {})
        mode = data.pop("policy", "auto")
        if mode not in MODES:
            raise InvalidInput(f"policy must be one of {', '.join(MODES)}, got {str(mode)[:20]!r}")
        parts: dict[str, Any] = {}
        for name, kind in (("gates", GateConfig), ("canary", CanaryConfig),
                           ("shadow", ShadowConfig), ("rollback", RollbackConfig),
                           ("approval", ApprovalConfig)):
            parts[name] = _section(name, kind, data.pop(name, None))
        if data:
            raise InvalidInput(f"unknown policy field(s): {', '.join(sorted(data))[:200]}")
        policy = cls(policy=mode, **parts)
        _check_ranges(policy)
        return policy

    def merged(self, data: dict[str, Any]) -> "Policy":
        """This policy with the fields in ``data`` changed (sections merge field by field)."""
        return Policy.from_dict(_merge(self.to_dict(), data))


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` over ``base``, objects field by field at every depth (``canary.outcomes``)."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _section(name: str, kind: type, raw: Any) -> Any:
    if raw is None:
        return kind()
    if not isinstance(raw, dict):
        raise InvalidInput(f"policy '{name}' must be an object")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInput(f"unknown field(s) in policy '{name}': {', '.join(unknown)[:200]}; "
                           f"known: {', '.join(known)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        expected = known[key].type
        nested = known[key].metadata.get("section")
        if nested is not None:
            if value is not None and not isinstance(value, dict):
                raise InvalidInput(f"policy '{name}.{key}' must be an object or null, "
                                   f"got {type(value).__name__}")
            values[key] = None if value is None else _section(f"{name}.{key}", nested, value)
        elif value is None and "None" in str(expected):
            values[key] = None
        elif str(expected) == "bool" and isinstance(value, bool):
            values[key] = value
        elif "float" in str(expected) and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            values[key] = float(value)
        elif "int" in str(expected) and isinstance(value, int) and not isinstance(value, bool):
            values[key] = value
        elif "str" in str(expected) and isinstance(value, str) and len(value) <= 64:
            values[key] = value
        else:
            raise InvalidInput(f"policy '{name}.{key}' must be a {str(expected).replace(' | None', '')}"
                               f", got {type(value).__name__}")
    return replace(kind(), **values)


def _check_ranges(p: Policy) -> None:
    checks = [
        ("canary.share", p.canary.share, 0.0, 1.0), ("shadow.share", p.shadow.share, 0.0, 1.0),
        ("gates.tolerance", p.gates.tolerance, 0.0, 1e9),
        ("gates.max_latency_ms", p.gates.max_latency_ms, 0.0, 1e7),
        ("gates.latency_factor", p.gates.latency_factor, 1.0, 1e6),
        ("canary.min_requests", p.canary.min_requests, 1, 10**9),
        ("canary.max_seconds", p.canary.max_seconds, 0.0, 1e8),
        ("canary.max_error_rate_increase", p.canary.max_error_rate_increase, 0.0, 1.0),
        ("canary.max_latency_ratio", p.canary.max_latency_ratio, 1.0, 1e6),
        ("shadow.tolerance", p.shadow.tolerance, 0.0, 1e9),
        ("shadow.min_requests", p.shadow.min_requests, 1, 10**9),
        ("rollback.watch_seconds", p.rollback.watch_seconds, 0.0, 1e8),
        ("rollback.min_requests", p.rollback.min_requests, 1, 10**9),
        ("rollback.max_error_rate", p.rollback.max_error_rate, 0.0, 1.0),
    ]
    outcomes = p.canary.outcomes
    if outcomes is not None:
        checks += [("canary.outcomes.max_drop", outcomes.max_drop, 0.0, 1e6),
                   ("canary.outcomes.min_outcomes", outcomes.min_outcomes, 1, 10**9)]
        if outcomes.metric is not None and outcomes.metric not in METRICS:
            raise InvalidInput(f"policy 'canary.outcomes.metric' must be one of "
                               f"{', '.join(METRICS)}, got {outcomes.metric[:40]!r}")
    if p.shadow.promote_at_agreement is not None:
        checks.append(("shadow.promote_at_agreement", p.shadow.promote_at_agreement, 0.0, 1.0))
    for name, value, low, high in checks:
        if not low <= value <= high:
            raise InvalidInput(f"policy '{name}' must be between {low} and {high}, got {value}")
    if p.canary.share in (0.0,) and p.policy == "canary":
        raise InvalidInput("policy 'canary.share' must be above 0 for a canary")
