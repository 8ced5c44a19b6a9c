"""The service layer: one builder of the services for the app, the CLI and the tests, and the
operations that change state.

Every write that changes what is served (a new version, an alias, a rollback, a policy, monitoring
settings) goes through a method here, which does the write (the registry records its event) and
tells the scorer's routing view at once, so a caller cannot forget it. The registry and the scorer
stay unaware of each other; this layer sits above deploy/, jobs/, scoring/ and registry/ and imports
no Flask.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from .auth.addin_grants import AddinGrants
from .auth.keys import KeyInfo, KeyStore
from .auth.login import WebLogin
from .auth.people import DisabledPerson, People
from .auth.sessions import WebSessions
from .auth.tokens import TokenVerifier, build_verifier
from .config import Settings
from .deploy import canary_outcomes
from .deploy.policy import Policy
from .deploy.registration import RegistrationRequest, register
from .deploy.release import Releases
from .deploy.worker import DeploymentWorker
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .jobs.runner import JobRunner
from .jobs.schedules import ScheduleInfo, Schedules
from .jobs.service import JobInfo, Jobs
from .registry.deployments import Deployments
from .registry.factory import build_registry
from .registry.service import Registry, VersionInfo
from .scoring.scorer import Scorer
from .telemetry import outcome_alerts
from .telemetry import outcome_source_runs as source_runs
from .telemetry import outcome_sources as source_decl
from .telemetry import outcomes as outcomes_mod
from .telemetry.outcome_source_runs import OutcomeSourceRunner
from .types import Outcome, Signature

__all__ = ["Services", "build_services"]


def _person(actor: str) -> str:
    """Who an actor is, without the display name: ``user:<subject>`` or ``key:<id>``."""
    return actor.split(" (", 1)[0]


def build_services(settings: Settings) -> Services:
    """The one place the services are wired (the app factory, the CLI and the tests use it)."""
    registry = build_registry(settings)
    scorer = Scorer(registry, settings)
    stale = settings.auth_stale_seconds
    tokens = build_verifier(settings)
    login = WebLogin(tokens, settings.oidc_client_id, settings.oidc_client_secret,
                     settings.oidc_login_scopes) \
        if tokens is not None and settings.oidc_client_id else None
    web_sessions = WebSessions(registry, stale)
    return Services(settings=settings, registry=registry, scorer=scorer,
                    keys=KeyStore(registry, stale), jobs=Jobs(registry, scorer, settings),
                    tokens=tokens, people=People(registry, stale), login=login,
                    web_sessions=web_sessions,
                    addin_grants=AddinGrants(web_sessions) if login is not None else None)


@dataclass
class Services:
    """Everything a request handler or a CLI command needs, and the operations on it.

    The background parts (deployment worker, job runner) are made on first use, so a CLI command
    that never needs them does not create them (a drop folder's subfolders, for one)."""

    settings: Settings
    registry: Registry
    scorer: Scorer
    keys: KeyStore
    jobs: Jobs
    tokens: TokenVerifier | None = None  # sign-in tokens, when an OpenID issuer is configured
    people: People | None = None          # people whose sign-in is cut off here
    login: WebLogin | None = None         # browser sign-in, when a client id is configured too
    web_sessions: WebSessions | None = None
    addin_grants: AddinGrants | None = None  # the Excel add-in's sign-in, beside browser sign-in

    @cached_property
    def worker(self) -> DeploymentWorker:
        return DeploymentWorker(self.registry, self.scorer, self.settings)

    @cached_property
    def runner(self) -> JobRunner:
        return JobRunner(self.jobs, self.worker.id)

    @cached_property
    def schedules(self) -> Schedules:
        """Scheduled scoring runs (each run is a batch job; HTTP and CLI call them pipelines)."""
        return Schedules(self.registry, self.jobs)

    def _changed(self) -> None:
        """What is served may have changed: the routing view asks the registry again."""
        self.scorer.deployments.invalidate()

    # -- deployment ------------------------------------------------------------------------------

    def register(self, req: RegistrationRequest) -> VersionInfo:
        """Check, evaluate and record a new version; its release (gates, then the policy) takes
        it from there."""
        info = register(self.registry, self.settings, req)
        if req.outcomes is not None:
            self.set_monitoring(req.name, {"outcomes": req.outcomes}, actor=req.actor)
        self._changed()
        return info

    def deploy_pending(self, worker: str) -> None:
        """Release here what is pending (a running server would too;
        claims make sure each version is processed once)."""
        Releases(self.registry, self.scorer.cache, worker).process_pending()
        self._changed()

    def set_alias(self, name: str, alias: str, version: int, *, actor: str,
                  reason: str = "") -> VersionInfo:
        """Point an alias at a version (promotion, for 'production'; under a four-eyes policy
        only once a second person has approved the version)."""
        if alias == "production" and Policy.from_dict(
                self.registry.get_model(name).policy).approval.required:
            candidate = self.registry.get_version(name, version)
            if not self._approved(name, version, candidate.created_by):
                raise Conflict(f"{name} v{version} needs the approval of a person other than "
                               f"{candidate.created_by} before it is promoted (four-eyes policy)")
        info = self.registry.set_alias(name, alias, version, actor=actor, reason=reason)
        self._changed()
        return info

    def rollback(self, name: str, *, actor: str, reason: str = "") -> VersionInfo:
        info = self.registry.rollback(name, actor=actor, reason=reason)
        self._changed()
        return info

    def decide_approval(self, name: str, version: int, *, approve: bool, actor: str,
                        reason: str = "") -> dict[str, Any]:
        """A second person's approval (or refusal) of a version before its promotion; the one
        who registered it cannot approve it. The latest decision stands."""
        candidate = self.registry.get_version(name, version)
        if _person(actor) == _person(candidate.created_by):
            raise Forbidden(f"you registered {name} v{version}: a second person must decide")
        kind = "approved" if approve else "approval_refused"
        self.registry.record_event(name, kind, actor=actor, version=version,
                                   registered_by=candidate.created_by, reason=reason or None)
        return {"model": name, "version": version, "decision": kind, "decided_by": actor,
                "registered_by": candidate.created_by, "reason": reason}

    def _approved(self, name: str, version: int, registrant: str) -> bool:
        for event in self.registry.events(name, limit=1000):  # newest first
            if event.version == version and event.kind in ("approved", "approval_refused") \
                    and _person(event.actor) != _person(registrant):
                return event.kind == "approved"
        return False

    def set_policy(self, name: str, changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
        """Merge ``changes`` into the model's policy (fields not given keep their values)."""
        model = self.registry.get_model(name)
        policy = Policy.from_dict(model.policy).merged(changes)
        canary_outcomes.check_fits(policy, Signature.from_dict(model.production.signature)
                                   if model.production else None)
        result = self.registry.set_policy(name, policy.to_dict(), actor=actor)
        self._changed()
        return result

    def set_monitoring(self, name: str, changes: dict[str, Any], *, actor: str,
                       may_query_sql: bool = False) -> dict[str, Any]:
        """Merge ``changes`` into the model's prediction log and outcome tracking settings
        (``outcomes`` and its ``alert`` merge field by field too; ``outcomes.sources``, a
        list, is replaced whole). Answers the settings as they may be shown (passwords
        masked, no run state)."""
        current = self.registry.get_model(name)
        new_outcomes = changes.get("outcomes") or {}
        if new_outcomes.get("sources") is not None:
            stored = (current.monitoring.get("outcomes") or {}).get("sources") or []
            changes = {**changes, "outcomes": {**new_outcomes, "sources": source_decl.declared(
                new_outcomes["sources"], stored, may_query_sql=may_query_sql,
                roots=self.settings.job_roots)}}
        monitoring = merged_monitoring(current.monitoring, changes)
        key = (monitoring.get("outcomes") or {}).get("key")
        if key and any(key in Signature.from_dict(v.signature).names for v in current.versions):
            raise InvalidInput(f"{key!r} is a model input: a business key is passed through "
                               "untouched and never scored")
        shown = source_decl.public_settings(monitoring)
        self.registry.set_monitoring(name, monitoring, actor=actor, shown=shown)
        self._changed()
        return shown

    # -- outcomes --------------------------------------------------------------------------------

    def record_outcomes(self, name: str, outcomes: Iterable[Outcome]) -> dict[str, Any]:
        """Join recorded actuals to tracked predictions, then check the model's quality alert
        (one event and webhook per crossing)."""
        model = self.registry.get_model(name)
        if not (model.monitoring.get("outcomes") or {}).get("enabled"):
            raise InvalidInput(f"model {name!r} does not track outcomes: switch it on with "
                               "PUT /api/v1/models/{name}/monitoring {\"outcomes\": "
                               "{\"enabled\": true}} or `scorebridge track`")
        if model.production is None:
            raise InvalidInput(f"model {name!r} has no production version")
        # flush what this process scored, so outcomes for it can be joined at once
        self.scorer.outcome_log.flush(self.registry)
        signature = Signature.from_dict(model.production.signature)
        report = outcomes_mod.record(self.registry, name, signature, outcomes).public()
        report["alert"] = outcome_alerts.check(self.registry, name)
        return {"model": name, **report}

    @cached_property
    def outcome_sources(self) -> OutcomeSourceRunner:
        """Runs outcome sources on demand (the deployment worker has its own, on schedule)."""
        return OutcomeSourceRunner(self.registry, f"{socket.gethostname()}:{os.getpid()}:now",
                                   self.settings.job_roots, self.settings.claim_timeout_seconds)

    def list_outcome_sources(self, name: str) -> dict[str, Any]:
        """The model's outcome sources (passwords masked) with their last runs."""
        return {"model": name, "sources": source_runs.listing(
            self.registry, name, self.settings.claim_timeout_seconds)}

    def run_outcome_sources(self, name: str, source: str | None = None) -> dict[str, Any]:
        """Read the model's enabled sources (or the one named) now, due or not; a source
        another worker is running is skipped."""
        model = self.registry.get_model(name)
        names = [s.name for s in source_decl.stored_sources(model.monitoring)]
        if source is not None and source not in names:
            raise NotFound(f"model {name!r} has no outcome source named {source[:48]!r}")
        self.scorer.outcome_log.flush(self.registry)  # what this process scored joins at once
        runs = self.outcome_sources.run_model(name, force=True, only=source)
        return {**self.list_outcome_sources(name), "runs": [r.public() for r in runs]}

    def outcome_quality(self, name: str, **options: Any) -> dict[str, Any]:
        """Live quality per version (see :func:`server.telemetry.outcomes.quality`) and the
        alert rule's current verdict."""
        self.scorer.outcome_log.flush(self.registry)
        out = outcomes_mod.quality(self.registry, name, **options)
        out["alert"] = outcome_alerts.assess(self.registry, name)
        return out

    def traffic_by_user(self, name: str, since: datetime | None = None) -> dict[str, Any]:
        """Each caller's scoring requests, errors and rows of model ``name`` (counts per hour,
        summed over the window; never what was scored). This worker's unflushed counts are
        written first, so a caller reads its own requests."""
        self.registry.get_model(name)  # 404 for an unknown model
        self.worker.flush_traffic()
        users = Deployments(self.registry).traffic_by_user(name, since)
        return {"model": name, "since": since.isoformat() if since else None, "users": users}

    def quality_windows(self) -> list[dict[str, Any]]:
        """Every model's live quality per version and day (the OData ``OutcomeQuality`` set)."""
        self.scorer.outcome_log.flush(self.registry)
        return outcomes_mod.quality_windows(self.registry)

    # -- keys ------------------------------------------------------------------------------------

    def create_key(self, scopes: str | list[str], name: str = "", *,
                   actor: str = "cli") -> tuple[str, KeyInfo]:
        """A new key: (its plain text, shown once, and its record); the audit trail says who."""
        plain, info = self.keys.create(scopes, name)
        self.registry.record_event(None, "key_created", actor=actor, key_id=info.key_id,
                                   key_name=info.name, scopes=",".join(info.scopes))
        return plain, info

    def revoke_key(self, key_id: str, *, actor: str = "cli") -> KeyInfo:
        info = self.keys.revoke(key_id)
        self.registry.record_event(None, "key_revoked", actor=actor, key_id=info.key_id,
                                   key_name=info.name)
        return info

    # -- people (sign-in) -------------------------------------------------------------------------

    def _people(self) -> tuple[People, str]:
        if self.people is None or not self.settings.oidc_issuer:
            raise InvalidInput("sign-in is not configured (SCOREBRIDGE_OIDC_ISSUER)")
        return self.people, self.settings.oidc_issuer

    def disable_person(self, subject: str, *, reason: str = "", actor: str) -> DisabledPerson:
        """Refuse SUBJECT's sign-in tokens from now on (every host within seconds)."""
        people, issuer = self._people()
        info = people.disable(issuer, subject, reason=reason, actor=actor)
        self.registry.record_event(None, "person_disabled", actor=actor, subject=subject,
                                   reason=reason or None)
        return info

    def enable_person(self, subject: str, *, actor: str) -> None:
        people, issuer = self._people()
        people.enable(issuer, subject)
        self.registry.record_event(None, "person_enabled", actor=actor, subject=subject)

    def disabled_people(self) -> list[DisabledPerson]:
        return self._people()[0].list()

    # -- batch jobs ------------------------------------------------------------------------------

    def submit_job(self, model: str, source: Path, **options: Any) -> JobInfo:
        """Queue a batch job (options as :meth:`Jobs.submit`); a job runner scores it."""
        return self.jobs.submit(model, source, **options)

    def cancel_job(self, job_id: str) -> JobInfo:
        return self.jobs.cancel(job_id)

    def run_job_here(self, job_id: str, worker: str) -> threading.Thread | None:
        """Claim the queued job ``job_id`` and score it in a thread of this process (the CLI's
        ``jobs submit --wait``); None when another runner has it or it is no longer queued."""
        job = self.jobs.claim(worker, job_id)
        if job is None:
            return None
        thread = threading.Thread(target=self.jobs.run, args=(job,), name=f"job-{job_id[:8]}",
                                  daemon=True)
        thread.start()
        return thread

    def save_job_result(self, job_id: str, target: Path) -> None:
        """Copy a finished job's output to ``target``."""
        path, _, _ = self.jobs.result(job_id)
        shutil.copyfile(path, target)

    # -- scheduled scoring pipelines ---------------------------------------------------------------

    def create_schedule(self, name: str, model: str, schedule: str, source: dict[str, Any],
                        sink: dict[str, Any], *, actor: str, alias: str = "production",
                        may_query_sql: bool = False) -> ScheduleInfo:
        return self.schedules.create(name, model, schedule, source, sink, actor=actor,
                                     alias=alias, may_query_sql=may_query_sql)

    def run_schedule(self, name: str) -> ScheduleInfo:
        """Run NAME now (its job is queued for a job runner); the schedule's state after it."""
        self.schedules.run(name)
        return self.schedules.get(name)

    def delete_schedule(self, name: str) -> None:
        self.schedules.delete(name)


def merged_monitoring(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` over ``current``; the ``outcomes`` settings and their ``alert`` merge by field,
    so switching tracking off keeps the key and the alert rule for next time. A field sent as
    null is left as it was, at every level."""
    out = {**current, **{k: v for k, v in changes.items() if k != "outcomes" and v is not None}}
    if changes.get("outcomes") is not None:
        old = dict(current.get("outcomes") or {})
        new = {k: v for k, v in changes["outcomes"].items() if v is not None}
        if "alert" in new:
            new["alert"] = {**(old.get("alert") or {}),
                            **{k: v for k, v in new["alert"].items() if v is not None}}
        out["outcomes"] = {**old, **new}
    return out
