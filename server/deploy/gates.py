"""The gates a version must pass before it may serve a single request.

Each gate returns a :class:`GateResult` that is stored on the version and shown in the API, the CLI
and the events: schema compatibility with production, a smoke test on the stored reference samples,
a metric gate on the holdout set (candidate and production scored by the server on the same data),
and a latency gate.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelRejected
from ..scoring.metrics import LOWER_IS_BETTER, evaluate
from ..scoring.runtime import LoadedModel
from .policy import GateConfig

LATENCY_CALLS = 15


@dataclass
class GateResult:
    gate: str
    passed: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def smoke_test(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """The model scores ``frame`` without error and with outputs of the right kind."""
    result = model.predict(frame, proba=True)
    if result.failures:
        raise ModelRejected(f"smoke test failed: the model raised on {len(result.failures)} of "
                            f"{len(frame)} sample rows")
    out = model.signature.output
    if out.kind == "classification":
        unknown = set(pd.unique(result.labels)) - set(out.classes or ())
        if unknown:
            raise ModelRejected("smoke test failed: predictions outside the model's classes")
        if result.probabilities is not None:
            p = result.probabilities
            if not np.isfinite(p).all() or (p < -1e-9).any() or \
                    not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
                raise ModelRejected("smoke test failed: probabilities are not valid distributions")
    elif not np.isfinite(result.labels.astype(float)).all():
        raise ModelRejected("smoke test failed: the model returned non-finite values")
    return result.labels


def schema_gate(candidate: LoadedModel, production: LoadedModel | None) -> GateResult:
    if production is None:
        return GateResult("schema", True, "first version: nothing to be compatible with")
    cand, prod = candidate.signature, production.signature
    problems = []
    if cand.names != prod.names:
        missing = [n for n in prod.names if n not in cand.names]
        added = [n for n in cand.names if n not in prod.names]
        if missing or added:
            problems.append("inputs differ" + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; new {', '.join(added)}" if added else ""))
        else:
            problems.append("inputs are in a different order (positional clients would break)")
    else:
        for c, p in zip(cand.inputs, prod.inputs):
            numeric = {"number", "integer"}
            if c.type != p.type and not (c.type in numeric and p.type in numeric):
                problems.append(f"input {c.name!r} changed type from {p.type} to {c.type}")
    if cand.output.kind != prod.output.kind:
        problems.append(f"output changed from {prod.output.kind} to {cand.output.kind}")
    elif cand.output.kind == "classification" and \
            list(cand.output.classes or ()) != list(prod.output.classes or ()):
        problems.append("classes changed from "
                        f"{list(prod.output.classes or ())} to {list(cand.output.classes or ())}")
    if problems:
        return GateResult("schema", False, "; ".join(problems))
    return GateResult("schema", True, f"same inputs and output as production v{production.version}")


def smoke_gate(candidate: LoadedModel, samples: list[tuple[str, pd.DataFrame]]) -> GateResult:
    if not samples:
        return GateResult("smoke", True, "no stored sample: checked at registration only")
    for label, frame in samples:
        try:
            smoke_test(candidate, frame[candidate.signature.names])
        except (ModelRejected, KeyError) as exc:
            detail = exc.detail if isinstance(exc, ModelRejected) else f"missing column {exc}"
            return GateResult("smoke", False, f"on the {label}: {detail}")
    return GateResult("smoke", True, "scored " + " and ".join(
        f"the {label} ({len(frame)} rows)" for label, frame in samples))


def primary_metric(model: LoadedModel, config: GateConfig) -> str:
    if config.metric:
        return config.metric
    out = model.signature.output
    if out.kind == "regression":
        return "r2"
    return "roc_auc" if len(out.classes or ()) == 2 else "accuracy"


def metric_gate(candidate: LoadedModel, production: LoadedModel | None,
                holdout: pd.DataFrame | None, target: str | None,
                config: GateConfig) -> GateResult:
    if production is None:
        return GateResult("metric", True, "first version: always passes")
    if holdout is None or not target:
        return GateResult("metric", True, "skipped: the version has no holdout set")
    metric = primary_metric(candidate, config)
    try:
        names = candidate.signature.names
        cand = evaluate(candidate, holdout[names], holdout[target])
        prod = evaluate(production, holdout[production.signature.names], holdout[target])
    except (ValueError, KeyError) as exc:
        return GateResult("metric", False, f"holdout evaluation failed: {exc}")
    if metric not in cand or metric not in prod:
        return GateResult("metric", False, f"metric {metric!r} is not available for this model")
    c, p = cand[metric], prod[metric]
    worse = (c - p) if metric in LOWER_IS_BETTER else (p - c)
    data = {"metric": metric, "candidate": c, "production": p, "tolerance": config.tolerance,
            "production_version": production.version}
    verdict = f"{metric} {c:.4f} vs production v{production.version} {p:.4f}"
    if worse > config.tolerance:
        return GateResult("metric", False, f"{verdict}: worse by {worse:.4f}, more than the "
                          f"tolerance {config.tolerance}", data)
    return GateResult("metric", True, verdict, data)


def _timed_ms(model: LoadedModel, row: pd.DataFrame) -> float:
    start = time.perf_counter()
    model.predict(row)
    return (time.perf_counter() - start) * 1000


def latency_gate(candidate: LoadedModel, production: LoadedModel | None, row: pd.DataFrame,
                 config: GateConfig) -> GateResult:
    """Single-row latency, measured interleaved with production's so that whatever else the
    machine is doing weighs on both alike."""
    cand_row = row[candidate.signature.names]
    try:
        prod_row = row[production.signature.names] if production is not None else None
    except KeyError:
        prod_row = None
    _timed_ms(candidate, cand_row)  # warm up
    if prod_row is not None:
        _timed_ms(production, prod_row)  # type: ignore[arg-type]
    cand_times, prod_times = [], []
    for _ in range(LATENCY_CALLS):
        cand_times.append(_timed_ms(candidate, cand_row))
        if prod_row is not None:
            prod_times.append(_timed_ms(production, prod_row))  # type: ignore[arg-type]
    cand_ms = float(np.median(cand_times))
    data: dict[str, Any] = {"candidate_ms": cand_ms, "max_latency_ms": config.max_latency_ms}
    if cand_ms > config.max_latency_ms:
        return GateResult("latency", False, f"single-row median {cand_ms:.1f} ms exceeds the "
                          f"limit of {config.max_latency_ms:.0f} ms", data)
    if prod_times:
        prod_ms = float(np.median(prod_times))
        data["production_ms"] = prod_ms
        allowed = prod_ms * config.latency_factor + 5.0  # 5 ms of slack for timer noise
        if cand_ms > allowed:
            return GateResult("latency", False, f"single-row median {cand_ms:.1f} ms is more "
                              f"than {config.latency_factor}x production's {prod_ms:.1f} ms",
                              data)
    return GateResult("latency", True, f"single-row median {cand_ms:.1f} ms", data)
