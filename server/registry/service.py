"""The registry: models, immutable numbered versions, aliases and the audit trail.

It knows nothing of HTTP; the API and the CLI call these methods alike. Methods return plain
dataclasses rather than ORM rows so callers never hold a database session.
"""
from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection, Iterator

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .. import faults
from ..errors import Conflict, InvalidInput, NotFound
from ..types.record import public_fields, shown
from .database import rows_changed, upgrade, writer
from .schema import (
    AliasRow,
    AnalysisRow,
    EventRow,
    InstallationRow,
    LeaseRow,
    ModelRow,
    RolloutRow,
    VersionRow,
    WebhookDeliveryRow,
    utcnow,
)
from .store import ArtifactStore

# a version's runtime (as stored) -> the engine that answers it (as the API names it)
ENGINES = {"native": "treelite", "onnx": "onnxruntime", "sklearn": "scikit-learn",
           # boosters not compiled run in their library's own predictor
           "xgboost": "XGBoost", "lightgbm": "LightGBM", "catboost": "CatBoost"}

PRODUCTION = "production"
MONITORING_STATE = "state"  # the monitoring document's member that background runs write
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def validate_name(name: str, what: str = "model name") -> str:
    """Model names are URL-, file- and formula-safe: lower-case letters, digits, ``-`` and ``_``."""
    pattern, limit = (NAME_RE, 64) if what == "model name" else (ALIAS_RE, 32)
    if not isinstance(name, str) or not pattern.match(name):
        raise InvalidInput(f"invalid {what}: use 1 to {limit} characters, a lower-case letter "
                           "first, then lower-case letters, digits, '-' or '_'")
    return name


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class VersionInfo:
    model: str
    version: int
    sha256: str
    artifact: str
    format: str
    size_bytes: int
    trusted_pickle: bool
    signature: dict[str, Any]
    reference: dict[str, Any]
    metrics: dict[str, Any]
    tags: dict[str, Any]
    environment: dict[str, Any]
    description: str
    created_at: datetime
    created_by: str
    rolled_back: bool
    aliases: list[str] = field(default_factory=list)
    pipeline: str = "done"
    gate_status: str | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    sample_artifact: str | None = None
    holdout_artifact: str | None = None
    target: str | None = None
    runtime: str = "sklearn"
    runtime_note: str = ""
    compiled_artifact: str | None = None

    def public(self) -> dict[str, Any]:
        """What the API and CLI show (no storage paths, no reference statistics)."""
        return {
            **public_fields(self, "model", "version", "sha256", "format", "size_bytes",
                            "trusted_pickle", "signature", "metrics", "tags", "environment",
                            "description", "created_at", "created_by", "rolled_back", "aliases",
                            "pipeline", "gate_status", "gates"),
            "has_holdout": self.holdout_artifact is not None,
            "runtime": {"engine": ENGINES.get(self.runtime, "scikit-learn"),
                        "note": self.runtime_note},
        }


@dataclass
class ModelInfo:
    name: str
    description: str
    created_at: datetime
    created_by: str
    aliases: dict[str, int]
    versions: list[VersionInfo]
    policy: dict[str, Any] = field(default_factory=dict)
    monitoring: dict[str, Any] = field(default_factory=dict)

    @property
    def production(self) -> VersionInfo | None:
        number = self.aliases.get(PRODUCTION)
        return next((v for v in self.versions if v.version == number), None)

    def summary(self) -> dict[str, Any]:
        prod = self.production
        return {
            "name": self.name, "description": self.description,
            "production_version": prod.version if prod else None,
            "latest_version": max((v.version for v in self.versions), default=None),
            "aliases": self.aliases, "versions": len(self.versions),
            "created_at": shown(self.created_at),
            "output": (prod.signature.get("output") if prod else None),
            "policy": self.policy.get("policy", "auto"),
        }

    def public(self) -> dict[str, Any]:
        out = self.summary()
        prod = self.production
        out["signature"] = prod.signature if prod else None
        out["policy"] = self.policy
        tracking = self.monitoring.get("outcomes") or {}
        # what a client needs to send outcomes: whether they are taken, and by which key column
        out["outcomes"] = {"enabled": bool(tracking.get("enabled")), "key": tracking.get("key")}
        out["versions"] = [v.public() for v in sorted(self.versions, key=lambda v: -v.version)]
        return out


@dataclass
class EventInfo:
    id: int
    model: str
    version: int | None
    kind: str
    actor: str
    detail: dict[str, Any]
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return public_fields(self, "id", "model", "version", "kind", "actor", "detail",
                             "created_at")


@dataclass
class NewVersion:
    """What registration has established about an artifact before it is recorded."""

    sha256: str
    format: str
    size_bytes: int
    signature: dict[str, Any]
    reference: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    trusted_pickle: bool = False
    sample_artifact: str | None = None
    holdout_artifact: str | None = None
    target: str | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    runtime: str = "sklearn"
    runtime_note: str = ""
    compiled_artifact: str | None = None
    analysis: dict[str, Any] | None = None  # quality on the holdout, stored in the same commit


class Registry:
    def __init__(self, engine: Engine, store: ArtifactStore, *, migrate: bool = True,
                 webhook_urls: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.store = store
        self.webhook_urls = webhook_urls
        if migrate:
            upgrade(engine)
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(writer(engine), expire_on_commit=False)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One atomic write: committed on success, rolled back on any error."""
        with self._write() as session, session.begin():
            yield session

    # -- queries ---------------------------------------------------------------------------------

    def _model_row(self, session: Session, name: str) -> ModelRow:
        row = session.scalar(select(ModelRow).where(ModelRow.name == name))
        if row is None:
            raise NotFound(f"no model named {name!r}")
        return row

    def _version_row(self, session: Session, model: ModelRow, version: int) -> VersionRow:
        row = session.scalar(select(VersionRow).where(VersionRow.model_id == model.id,
                                                      VersionRow.version == version))
        if row is None:
            raise NotFound(f"model {model.name!r} has no version {version}")
        return row

    def _aliases(self, session: Session, model_id: int) -> dict[str, int]:
        rows = session.execute(
            select(AliasRow.alias, VersionRow.version)
            .join(VersionRow, VersionRow.id == AliasRow.version_id)
            .where(AliasRow.model_id == model_id))
        return {alias: version for alias, version in rows}

    @staticmethod
    def _version_info(model: str, row: VersionRow, aliases: dict[str, int]) -> VersionInfo:
        return VersionInfo(
            model=model, version=row.version, sha256=row.sha256, artifact=row.artifact,
            format=row.format, size_bytes=row.size_bytes, trusted_pickle=row.trusted_pickle,
            signature=row.signature, reference=row.reference or {}, metrics=row.metrics or {},
            tags=row.tags or {}, environment=row.environment or {},
            description=row.description, created_at=_utc(row.created_at),  # type: ignore[arg-type]
            created_by=row.created_by, rolled_back=row.rolled_back,
            aliases=sorted(a for a, v in aliases.items() if v == row.version),
            pipeline=row.pipeline, gate_status=row.gate_status, gates=row.gates or [],
            sample_artifact=row.sample_artifact, holdout_artifact=row.holdout_artifact,
            target=row.target, runtime=row.runtime, runtime_note=row.runtime_note,
            compiled_artifact=row.compiled_artifact)

    def _model_info(self, session: Session, row: ModelRow) -> ModelInfo:
        aliases = self._aliases(session, row.id)
        versions = session.scalars(select(VersionRow).where(VersionRow.model_id == row.id)
                                   .order_by(VersionRow.version)).all()
        return ModelInfo(name=row.name, description=row.description,
                         created_at=_utc(row.created_at),  # type: ignore[arg-type]
                         created_by=row.created_by, aliases=aliases,
                         versions=[self._version_info(row.name, v, aliases) for v in versions],
                         policy=row.policy or {"policy": "auto"},
                         monitoring=row.monitoring or {})

    def list_models(self, only: Collection[str] | None = None) -> list[ModelInfo]:
        """Every model, or only those named in ``only`` (a caller's per-model access)."""
        with self.reading() as session:
            query = select(ModelRow).order_by(ModelRow.name)
            if only is not None:
                query = query.where(ModelRow.name.in_(sorted(only)))
            rows = session.scalars(query).all()
            return [self._model_info(session, row) for row in rows]

    def get_model(self, name: str) -> ModelInfo:
        with self.reading() as session:
            return self._model_info(session, self._model_row(session, name))

    def get_version(self, name: str, version: int | None = None,
                    alias: str | None = None) -> VersionInfo:
        """A version by number, by alias, or (neither given) the production version."""
        with self.reading() as session:
            model = self._model_row(session, name)
            aliases = self._aliases(session, model.id)
            if version is None:
                alias = alias or PRODUCTION
                if alias not in aliases:
                    raise NotFound(f"model {name!r} has no version with alias {alias!r}")
                version = aliases[alias]
            row = session.scalar(select(VersionRow).where(VersionRow.model_id == model.id,
                                                          VersionRow.version == version))
            if row is None:
                raise NotFound(f"model {name!r} has no version {version}")
            return self._version_info(name, row, aliases)

    def events(self, name: str | None = None, limit: int = 100,
               after_id: int | None = None,
               only: Collection[str] | None = None) -> list[EventInfo]:
        """Newest first; with ``only``, just the events of those models (events of no model,
        such as a key's creation, are left out too)."""
        with self.reading() as session:
            query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
            if name is not None:
                query = query.where(EventRow.model_name == name)
            if only is not None:
                query = query.where(EventRow.model_name.in_(sorted(only)))
            if after_id is not None:
                query = query.where(EventRow.id > after_id)
            return [EventInfo(id=e.id, model=e.model_name, version=e.version, kind=e.kind,
                              actor=e.actor, detail=e.detail or {},
                              created_at=_utc(e.created_at))  # type: ignore[arg-type]
                    for e in session.scalars(query)]

    def change_marker(self) -> int:
        """Grows with every recorded change; workers poll it to learn of deployments."""
        with self.reading() as session:
            return int(session.scalar(select(func.coalesce(func.max(EventRow.id), 0))) or 0)

    def referenced_artifacts(self) -> set[str]:
        with self.reading() as session:
            rows = session.execute(select(VersionRow.artifact, VersionRow.sample_artifact,
                                          VersionRow.holdout_artifact,
                                          VersionRow.compiled_artifact))
            return {key for row in rows for key in row if key}

    # -- writes ----------------------------------------------------------------------------------

    def claim_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take the lease ``name`` for ``seconds`` if nobody holds it (or its holder's time ran
        out). Of many workers and hosts asking at once, exactly one gets True: the update is
        conditional on expiry, and a first-ever lease is a primary-key insert."""
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        try:
            with self.writing() as session:
                taken = rows_changed(session.execute(
                    update(LeaseRow).where(LeaseRow.name == name, LeaseRow.expires_at <= now)
                    .values(holder=holder, expires_at=until)))
                if taken:
                    return True
                if session.get(LeaseRow, name) is not None:
                    return False
                session.add(LeaseRow(name=name, holder=holder, expires_at=until))
            return True
        except IntegrityError:  # another worker created it between our look and our insert
            return False

    def installation_value(self, name: str, first: Callable[[], str]) -> str:
        """The installation's value ``name``; the first caller ever stores ``first()``. Of many
        workers and hosts asking at once, all get the one value stored: the insert is on the
        primary key, and a loser reads the winner's."""
        with self.reading() as session:
            row = session.get(InstallationRow, name)
            if row is not None:
                return row.value
        try:
            with self.writing() as session:
                session.add(InstallationRow(name=name, value=first()))
        except IntegrityError:  # another worker stored it between our look and our insert
            pass
        with self.reading() as session:
            stored = session.get(InstallationRow, name)
            assert stored is not None  # stored by us or by the worker that won
            return stored.value

    def _event(self, session: Session, model: ModelRow | None, kind: str, actor: str,
               version: int | None = None, **detail: Any) -> None:
        """Record an event and, in the same transaction, its webhook deliveries (an outbox)."""
        event = EventRow(model_id=model.id if model else None,
                         model_name=model.name if model else "", version=version, kind=kind,
                         actor=actor, detail=detail, created_at=utcnow())
        session.add(event)
        if self.webhook_urls:
            session.flush()
            for url in self.webhook_urls:
                session.add(WebhookDeliveryRow(event_id=event.id, url=url, attempts=0,
                                               next_attempt_at=utcnow(), failed=False,
                                               last_error=""))

    def add_version(self, name: str, new: NewVersion, artifact_key: str, *, actor: str,
                    description: str | None = None) -> VersionInfo:
        """Record a version whose artifact is already in the store; the first becomes production."""
        validate_name(name)
        for attempt in range(5):
            try:
                with self.writing() as session:
                    model = session.scalar(select(ModelRow).where(ModelRow.name == name)
                                           .with_for_update())
                    if model is None:
                        model = ModelRow(name=name, description=description or new.description,
                                         created_by=actor, created_at=utcnow(),
                                         policy={"policy": "auto"}, monitoring={})
                        session.add(model)
                        session.flush()
                        self._event(session, model, "model_created", actor)
                    elif description:
                        model.description = description
                    number = (session.scalar(select(func.max(VersionRow.version))
                                             .where(VersionRow.model_id == model.id)) or 0) + 1
                    row = VersionRow(
                        model_id=model.id, version=number, sha256=new.sha256, artifact=artifact_key,
                        format=new.format, size_bytes=new.size_bytes,
                        trusted_pickle=new.trusted_pickle, signature=new.signature,
                        reference=new.reference, metrics=new.metrics, tags=new.tags,
                        environment=new.environment, description=new.description,
                        created_by=actor, created_at=utcnow(), rolled_back=False,
                        sample_artifact=new.sample_artifact,
                        holdout_artifact=new.holdout_artifact, target=new.target,
                        runtime=new.runtime, runtime_note=new.runtime_note,
                        compiled_artifact=new.compiled_artifact, pipeline="pending", gates=[])
                    session.add(row)
                    session.flush()
                    if new.analysis is not None:
                        session.add(AnalysisRow(version_id=row.id, computed_at=utcnow(),
                                                data=new.analysis))
                    self._event(session, model, "registered", actor, number, sha256=new.sha256,
                                format=new.format, trusted_pickle=new.trusted_pickle)
                    if number == 1 and new.gates:
                        # nothing serves yet: the first version was gated at registration
                        row.pipeline, row.gate_status, row.gates = "done", "passed", new.gates
                        self._event(session, model, "gates_passed", actor, number,
                                    gates=new.gates)
                        self._set_alias(session, model, PRODUCTION, row, actor,
                                        reason="first version of a new model")
                    session.flush()
                    faults.point("registered.before_commit")
                    name_, model_id = model.name, model.id
                with self.reading() as session:
                    return self._version_info(name_, session.get(VersionRow, row.id),  # type: ignore[arg-type]
                                              self._aliases(session, model_id))
            except IntegrityError as exc:
                if attempt == 4:
                    raise Conflict(f"could not allocate a version number for {name!r}; retry") from exc
        raise AssertionError("unreachable")

    def get_analysis(self, name: str, version: int) -> dict[str, Any] | None:
        """The version's stored holdout analysis, or None when it has none yet."""
        with self.reading() as session:
            row = self._version_row(session, self._model_row(session, name), version)
            found = session.get(AnalysisRow, row.id)
            return found.data if found is not None else None

    def save_analysis(self, name: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Store an analysis computed after registration; when another worker stored one first
        (or an older format is replaced), the stored one wins and is returned."""
        try:
            with self.writing() as session:
                row = self._version_row(session, self._model_row(session, name), version)
                found = session.get(AnalysisRow, row.id)
                if found is not None and found.data.get("format") == data.get("format"):
                    return found.data
                if found is not None:
                    found.data, found.computed_at = data, utcnow()
                else:
                    session.add(AnalysisRow(version_id=row.id, computed_at=utcnow(), data=data))
            return data
        except IntegrityError:
            stored = self.get_analysis(name, version)
            return stored if stored is not None else data

    def complete_analysis(self, name: str, version: int, part: str,
                          value: Any) -> dict[str, Any]:
        """Add ``part`` to the version's stored analysis unless it is there already (another
        worker computed it first); the stored analysis is returned."""
        with self.writing() as session:
            row = self._version_row(session, self._model_row(session, name), version)
            found = session.get(AnalysisRow, row.id, with_for_update=True)
            if found is None:
                raise NotFound(f"model {name!r} version {version} has no analysis")
            if part not in found.data:
                found.data = {**found.data, part: value}
            return dict(found.data)

    def _set_alias(self, session: Session, model: ModelRow, alias: str, row: VersionRow,
                   actor: str, reason: str, kind: str = "promoted") -> int | None:
        current = session.get(AliasRow, (model.id, alias))
        previous = None
        if current is None:
            session.add(AliasRow(model_id=model.id, alias=alias, version_id=row.id,
                                 updated_at=utcnow(), updated_by=actor))
        else:
            previous = session.get(VersionRow, current.version_id)
            current.version_id, current.updated_at, current.updated_by = row.id, utcnow(), actor
        self._event(session, model, kind, actor, row.version, alias=alias, reason=reason,
                    previous=previous.version if previous else None)
        session.flush()
        faults.point(f"{kind}.before_commit")
        return previous.version if previous else None

    def _close_rollouts(self, session: Session, model: ModelRow, actor: str,
                        promoted: int | None) -> None:
        """A person's promotion or rollback ends the automatic rollouts it overrides."""
        for r in session.scalars(select(RolloutRow).where(RolloutRow.model_id == model.id,
                                                          RolloutRow.finished_at.is_(None))):
            if promoted is not None and r.kind == "shadow" and r.version != promoted:
                continue  # promoting something else does not stop a shadow comparison
            outcome = "promoted" if r.version == promoted else "superseded"
            r.finished_at, r.outcome = utcnow(), outcome
            if r.kind in ("canary", "shadow"):
                alias = session.get(AliasRow, (model.id, r.kind))
                if alias is not None:
                    session.delete(alias)
            self._event(session, model, f"{r.kind}_finished", actor, r.version, outcome=outcome,
                        reason="ended by a manual promotion or rollback")

    def set_alias(self, name: str, alias: str, version: int, *, actor: str,
                  reason: str = "") -> VersionInfo:
        """Point ``alias`` at ``version`` (promotion when the alias is ``production``)."""
        validate_name(alias, "alias")
        with self.writing() as session:
            model = self._model_row(session, name)
            row = session.scalar(select(VersionRow).where(VersionRow.model_id == model.id,
                                                          VersionRow.version == version))
            if row is None:
                raise NotFound(f"model {name!r} has no version {version}")
            if alias == PRODUCTION:
                row.rolled_back = False
                self._close_rollouts(session, model, actor, promoted=version)
            self._set_alias(session, model, alias, row, actor, reason or "set by request")
        return self.get_version(name, version)

    def rollback(self, name: str, *, actor: str, reason: str = "") -> VersionInfo:
        """Return production to the newest earlier production version not itself rolled back."""
        with self.writing() as session:
            model = self._model_row(session, name)
            current = session.get(AliasRow, (model.id, PRODUCTION))
            if current is None:
                raise Conflict(f"model {name!r} has no production version")
            current_row = session.get(VersionRow, current.version_id)
            assert current_row is not None
            history = session.scalars(
                select(EventRow).where(EventRow.model_id == model.id,
                                       EventRow.kind.in_(("promoted", "rolled_back")))
                .order_by(EventRow.id.desc())).all()
            candidates = [e.version for e in history
                          if (e.detail or {}).get("alias") == PRODUCTION and e.version is not None]
            target = None
            for number in candidates:
                if number == current_row.version:
                    continue
                row = session.scalar(select(VersionRow).where(VersionRow.model_id == model.id,
                                                              VersionRow.version == number))
                if row is not None and not row.rolled_back:
                    target = row
                    break
            if target is None:
                raise Conflict(f"model {name!r} has no earlier production version to roll back to")
            current_row.rolled_back = True
            self._close_rollouts(session, model, actor, promoted=None)
            self._set_alias(session, model, PRODUCTION, target, actor,
                            reason=reason or f"rolled back from version {current_row.version}",
                            kind="rolled_back")
            number = target.version
        return self.get_version(name, number)

    def record_event(self, name: str | None, kind: str, *, actor: str,
                     version: int | None = None, **detail: Any) -> None:
        with self.writing() as session:
            model = session.scalar(select(ModelRow).where(ModelRow.name == name)) if name else None
            self._event(session, model, kind, actor, version, **detail)

    def record_state_change(self, name: str, kind: str, kinds: tuple[str, ...], *, actor: str,
                            version: int | None = None, **detail: Any) -> bool:
        """Record ``kind`` (one of the states ``kinds``) unless the model's latest event of
        ``kinds`` already is ``kind``: one event per crossing, however often it is checked. The
        model's row is locked meanwhile, so two workers checking at once record it once."""
        with self.writing() as session:
            model = session.scalar(select(ModelRow).where(ModelRow.name == name)
                                   .with_for_update())
            if model is None:
                raise NotFound(f"no model named {name!r}")
            last = session.scalar(select(EventRow.kind).where(
                EventRow.model_id == model.id, EventRow.kind.in_(kinds))
                .order_by(EventRow.id.desc()).limit(1))
            if last == kind or (last is None and kind != kinds[0]):
                return False  # already in that state (the first state needs no event)
            self._event(session, model, kind, actor, version, **detail)
            return True

    def set_monitoring(self, name: str, monitoring: dict[str, Any], *, actor: str,
                       shown: dict[str, Any] | None = None) -> None:
        """New monitoring settings; the event records ``shown`` (the settings as they may be
        shown: secrets masked) when given. The document's ``state`` member belongs to
        background work (:meth:`update_monitoring_state`) and is kept as stored, so a settings
        change made from an older read cannot undo what a run wrote meanwhile."""
        with self.writing() as session:
            model = session.scalar(select(ModelRow).where(ModelRow.name == name)
                                   .with_for_update())
            if model is None:
                raise NotFound(f"no model named {name!r}")
            stored = (model.monitoring or {}).get(MONITORING_STATE)
            settings = {k: v for k, v in monitoring.items() if k != MONITORING_STATE}
            model.monitoring = {**settings, **({MONITORING_STATE: stored} if stored else {})}
            self._event(session, model, "monitoring_changed", actor,
                        **(shown if shown is not None else settings))

    def update_monitoring_state(self, name: str,
                                change: Callable[[dict[str, Any]], dict[str, Any] | None],
                                ) -> dict[str, Any]:
        """Read, change and write the ``state`` member of a model's monitoring document with
        the model's row locked, so workers and hosts deciding at once decide one after the
        other. ``change`` gets a copy of the state and returns the new one, or None to leave
        it; the answer is the state as stored afterwards. No event: state is not a setting."""
        with self.writing() as session:
            model = session.scalar(select(ModelRow).where(ModelRow.name == name)
                                   .with_for_update())
            if model is None:
                raise NotFound(f"no model named {name!r}")
            monitoring = dict(model.monitoring or {})
            state = copy.deepcopy(monitoring.get(MONITORING_STATE) or {})
            new = change(state)
            if new is None:
                return state
            model.monitoring = {**monitoring, MONITORING_STATE: new}
            return new

    def set_policy(self, name: str, policy: dict[str, Any], *, actor: str) -> dict[str, Any]:
        with self.writing() as session:
            model = self._model_row(session, name)
            previous = (model.policy or {}).get("policy", "auto")
            model.policy = policy
            self._event(session, model, "policy_changed", actor, policy=policy.get("policy"),
                        previous=previous)
        return policy
