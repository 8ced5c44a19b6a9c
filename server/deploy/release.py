"""The release process: every registered version, once, in order, through gates and rollout.

Registration (HTTP upload, CLI, drop folder) only records a version as ``pending``. Whichever worker
claims it runs the gates, stores their results, and rolls the version out as the model's policy says.
Open rollouts (canaries, shadows, watches over fresh promotions) are evaluated on every tick from the
traffic counters all workers share through the database.

Called the release process here (the API and the version's ``pipeline`` state field keep their
public names) so that "pipeline" inside the code means only scikit-learn's Pipeline; the scheduled
scoring runs are :mod:`server.jobs.schedules`.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from .. import metrics
from ..codecs.parquet import frame_from_parquet
from ..errors import NotFound, ScoreBridgeError
from ..registry.deployments import Deployments, Rollout, RolloutPlan
from ..registry.service import Registry, VersionInfo
from ..scoring.cache import ModelCache
from ..types import Signature, example_frame
from . import canary_outcomes
from .gates import GateResult, latency_gate, metric_gate, schema_gate, smoke_gate
from .policy import Policy

log = logging.getLogger(__name__)
ACTOR = "deployment pipeline"


class Releases:
    """Gates pending versions and decides open rollouts; every worker runs it on its tick."""

    def __init__(self, registry: Registry, cache: ModelCache, worker: str,
                 claim_timeout: float = 300.0) -> None:
        self.registry = registry
        self.deployments = Deployments(registry)
        self.cache = cache
        self.worker = worker
        self.claim_timeout = timedelta(seconds=claim_timeout)

    # -- new versions -----------------------------------------------------------------------------

    def process_pending(self, limit: int = 20) -> list[VersionInfo]:
        """Claim and process pending versions (any model), oldest first; returns what it did."""
        done = []
        for _ in range(limit):
            info = self.deployments.claim_next(self.worker, self.claim_timeout)
            if info is None:
                break
            self.process(info)
            done.append(info)
        return done

    def _frame(self, key: str | None) -> pd.DataFrame | None:
        return frame_from_parquet(self.registry.store.read_bytes(key)) if key else None

    def run_gates(self, info: VersionInfo, production: VersionInfo | None,
                  policy: Policy) -> list[GateResult]:
        try:
            candidate = self.cache.get(info)
        except ScoreBridgeError as exc:
            return [GateResult("load", False, exc.detail)]
        current = None
        if production is not None:
            try:
                current = self.cache.get(production)
            except ScoreBridgeError as exc:
                log.warning("production %s v%s cannot load for comparison: %s", info.model,
                            production.version, exc.detail)
        results = [schema_gate(candidate, current)]
        samples: list[tuple[str, pd.DataFrame]] = []
        own = self._frame(info.sample_artifact)
        if own is not None:
            samples.append(("version's sample", own))
        if production is not None and production.sample_artifact:
            samples.append((f"production v{production.version}'s sample",
                            self._frame(production.sample_artifact)))
        results.append(smoke_gate(candidate, samples))
        results.append(metric_gate(candidate, current, self._frame(info.holdout_artifact),
                                   info.target, policy.gates))
        row = own.head(1) if own is not None else \
            example_frame(Signature.from_dict(info.signature), 1)
        try:
            results.append(latency_gate(candidate, current, row, policy.gates))
        except KeyError as exc:
            results.append(GateResult("latency", False, f"sample lacks column {exc}"))
        return results

    def process(self, info: VersionInfo) -> None:
        """Gate ``info`` and roll it out; any failure is recorded, never left half done."""
        name = info.model
        try:
            model = self.registry.get_model(name)
            policy = Policy.from_dict(model.policy)
            production = model.production
            results = self.run_gates(info, production, policy)
        except Exception as exc:  # a broken version must not block the queue
            log.exception("pipeline failed on %s v%s", name, info.version)
            results = [GateResult("pipeline", False, f"could not be processed "
                                                     f"({type(exc).__name__})")]
            policy, production = Policy(), None
        passed = all(r.passed for r in results)
        metrics.RELEASES.labels(name, "passed" if passed else "failed").inc()
        plan = self.plan(production, policy) if passed else None
        if not self.deployments.finish(name, info.version, [r.as_dict() for r in results],
                                       passed, ACTOR, plan, worker=self.worker):
            log.warning("%s v%s was taken up by another worker while this one gated it; "
                        "its result is left to that worker", name, info.version)

    @staticmethod
    def plan(production: VersionInfo | None, policy: Policy) -> RolloutPlan:
        """How a version that passed its gates reaches production under ``policy``."""
        mode = policy.policy
        baseline = production.version if production else None
        if policy.approval.required:
            return RolloutPlan("manual", reason="policy requires a second person's approval")
        if production is None:
            return RolloutPlan("promote", reason="passed its gates; no production version yet")
        if mode == "manual":
            return RolloutPlan("manual", reason="policy is manual")
        if mode == "auto":
            return RolloutPlan("watch", asdict(policy.rollback), baseline,
                               reason="passed its gates (policy auto)")
        config = asdict(policy.canary if mode == "canary" else policy.shadow)
        return RolloutPlan(mode, config, baseline)

    # -- open rollouts ----------------------------------------------------------------------------

    def evaluate_rollouts(self, now: datetime | None = None) -> list[tuple[Rollout, str]]:
        """Decide every open rollout that has enough evidence; returns (rollout, outcome) pairs."""
        now = now or datetime.now(timezone.utc)
        decided = []
        for rollout in self.deployments.open_rollouts():
            try:
                outcome = getattr(self, f"_evaluate_{rollout.kind}")(rollout, now)
            except NotFound:
                outcome = None
            if outcome:
                decided.append((rollout, outcome))
        return decided

    def _evaluate_canary(self, r: Rollout, now: datetime) -> str | None:
        cfg = r.config
        cand = self.deployments.traffic(r.model, r.version, r.started_at)
        base = self.deployments.traffic(r.model, r.baseline, r.started_at) \
            if r.baseline is not None else None
        elapsed = (now - r.started_at).total_seconds()
        quality = canary_outcomes.judge(self.registry, r)
        detail: dict[str, Any] = {"canary": cand.public(),
                                  "production": base.public() if base else None,
                                  "elapsed_seconds": round(elapsed, 1)}
        if quality is not None:
            detail["outcomes"] = quality.detail
        if quality is not None and quality.status == canary_outcomes.FAILED:
            # enough outcomes say it is worse: no need to wait for the requests or the time
            detail["reason"] = "canary outside limits: " + quality.reason
            return self._finish(r, "rolled_back", detail, rollback=True)
        if cand.requests < cfg["min_requests"] and elapsed < cfg["max_seconds"]:
            return None
        if cand.requests == 0:
            detail["reason"] = f"no canary traffic in {elapsed:.0f} s: production kept"
            return self._finish(r, "rolled_back", detail, rollback=True)
        base_rate = base.error_rate if base else 0.0
        problems = []
        if cand.error_rate > base_rate + cfg["max_error_rate_increase"]:
            problems.append(f"error rate {cand.error_rate:.3f} vs production {base_rate:.3f}")
        if base and base.requests and \
                cand.mean_latency > base.mean_latency * cfg["max_latency_ratio"] + 0.002:
            problems.append(f"mean latency {cand.mean_latency * 1000:.1f} ms vs production "
                            f"{base.mean_latency * 1000:.1f} ms")
        if problems:
            detail["reason"] = "canary outside limits: " + "; ".join(problems)
            return self._finish(r, "rolled_back", detail, rollback=True)
        detail["reason"] = (f"canary within limits over {cand.requests} requests "
                            f"(error rate {cand.error_rate:.3f})"
                            + (f"; {quality.reason}" if quality is not None else ""))
        return self._finish(r, "promoted", detail, promote=True)

    def _evaluate_shadow(self, r: Rollout, now: datetime) -> str | None:
        threshold = r.config.get("promote_at_agreement")
        if threshold is None:
            return None
        t = self.deployments.traffic(r.model, r.version, r.started_at)
        if t.shadow_compared < r.config["min_requests"] or (t.agreement or 0) < threshold:
            return None
        return self._finish(r, "promoted", {
            "shadow": t.public(),
            "reason": f"agreement {t.agreement:.3f} over {t.shadow_compared} rows"}, promote=True)

    def _evaluate_watch(self, r: Rollout, now: datetime) -> str | None:
        cfg = r.config
        t = self.deployments.traffic(r.model, r.version, r.started_at)
        if t.requests >= cfg["min_requests"] and t.error_rate > cfg["max_error_rate"]:
            return self._finish(r, "rolled_back", {
                "traffic": t.public(),
                "reason": f"error rate {t.error_rate:.3f} crossed {cfg['max_error_rate']} after "
                          f"promotion"}, rollback=True)
        if (now - r.started_at).total_seconds() >= cfg["watch_seconds"]:
            return self._finish(r, "completed", {"traffic": t.public(),
                                                 "reason": "watch window passed"})
        return None

    def _finish(self, r: Rollout, outcome: str, detail: dict[str, Any], *, promote: bool = False,
                rollback: bool = False) -> str | None:
        watch = None
        if promote and r.kind != "watch":
            policy = Policy.from_dict(self.registry.get_model(r.model).policy)
            watch = asdict(policy.rollback)
        if self.deployments.finish_rollout(r, outcome, ACTOR, promote=promote, rollback=rollback,
                                           detail=detail, watch=watch):
            log.info("%s of %s v%s: %s (%s)", r.kind, r.model, r.version, outcome,
                     detail.get("reason"))
            metrics.ROLLOUTS.labels(r.model, r.kind, outcome).inc()
            return outcome
        return None
