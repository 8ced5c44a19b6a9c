"""Tables of the registry database. Alembic migrations in ``migrations/`` create and evolve them."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    policy: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    monitoring: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    artifact: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    trusted_pickle: Mapped[bool] = mapped_column(Boolean, default=False)
    signature: Mapped[dict[str, Any]] = mapped_column(JSONType)
    reference: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    environment: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    rolled_back: Mapped[bool] = mapped_column(Boolean, default=False)
    # the deployment pipeline: pending -> processing -> done; gates hold each gate's result
    pipeline: Mapped[str] = mapped_column(String(16), default="pending")
    gate_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    gates: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    sample_artifact: Mapped[str | None] = mapped_column(String(255), nullable=True)
    holdout_artifact: Mapped[str | None] = mapped_column(String(255), nullable=True)
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # how the version is scored: "native" (compiled trees) or "onnx" (an ONNX graph), each
    # verified against scikit-learn, or "sklearn"
    runtime: Mapped[str] = mapped_column(String(16), default="sklearn")
    runtime_note: Mapped[str] = mapped_column(Text, default="")
    compiled_artifact: Mapped[str | None] = mapped_column(String(255), nullable=True)


class AliasRow(Base):
    __tablename__ = "aliases"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"),
                                          primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class EventRow(Base):
    """The audit trail; its highest id is also the change marker that workers poll."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"),
                                                 index=True, nullable=True)
    model_name: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    hashed: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DisabledPersonRow(Base):
    """A person (an issuer's subject) whose sign-in tokens are refused, whatever the issuer says."""

    __tablename__ = "disabled_people"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_disabled_person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(500), default="")
    disabled_by: Mapped[str] = mapped_column(String(255), default="")
    disabled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebSessionRow(Base):
    """A browser's sign-in, kept on the server: the cookie holds only a random token whose hash
    is the key here (``pending``: between /auth/login and /auth/callback; ``active``: signed in;
    ``addin-code``, ``addin`` and ``addin-refresh``: the Excel add-in's code and tokens)."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RolloutRow(Base):
    """A canary, a shadow, or the watch over a freshly promoted version; open while not finished."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    baseline: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class TrafficRow(Base):
    """Per-minute traffic counters per version and worker, flushed from each worker's memory."""

    __tablename__ = "traffic"
    __table_args__ = (UniqueConstraint("model_name", "version", "worker", "minute",
                                       name="uq_traffic_bucket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(128))
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_sum: Mapped[float] = mapped_column(Float, default=0.0)
    latency_buckets: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    shadow_compared: Mapped[int] = mapped_column(BigInteger, default=0)
    shadow_agreed: Mapped[int] = mapped_column(BigInteger, default=0)


class TrafficUserRow(Base):
    """Scoring requests and rows per model, hour and caller (a key or a person): counts only,
    never a payload. One row per bucket for every worker and host (added to in place)."""

    __tablename__ = "traffic_users"
    __table_args__ = (UniqueConstraint("model_name", "hour", "caller",
                                       name="uq_traffic_users_bucket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64), index=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    caller: Mapped[str] = mapped_column(String(300))  # key:<id> or user:<subject>
    caller_name: Mapped[str] = mapped_column(String(255), default="")  # the latest display name
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDeliveryRow(Base):
    """The outbox of webhook deliveries, written in the same transaction as their event."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                      index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str] = mapped_column(String(512), default="")


class PredictionRow(Base):
    """One sampled scored row: its inputs (as the model saw them), prediction and context. Never
    a key or a header: only what was scored."""

    __tablename__ = "prediction_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    client: Mapped[str] = mapped_column(String(16), default="http")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prediction: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)  # {"value"}
    probability: Mapped[float | None] = mapped_column(Float, nullable=True)


class DriftRow(Base):
    """One feature's drift measures for one model at one time ("(prediction)" for the output)."""

    __tablename__ = "drift_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    feature: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(24))
    rows: Mapped[int] = mapped_column(Integer)
    psi: Mapped[float | None] = mapped_column(Float, nullable=True)
    distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    null_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    out_of_range_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    unknown_rate: Mapped[float | None] = mapped_column(Float, nullable=True)


class JobRow(Base):
    """A batch job: an input file scored in chunks by one version into an output file."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    input_path: Mapped[str] = mapped_column(String(1024))
    output_format: Mapped[str] = mapped_column(String(16))
    output_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    rows_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ScoredRow(Base):
    """A row of a job's output, published for the OData feed (jobs run with ``publish``)."""

    __tablename__ = "scored_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    row_no: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)


class ScheduleRow(Base):
    """A scheduled scoring run (a "pipeline" in the API): a source, a model alias, a cron schedule
    and a sink. The table keeps its public name."""

    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64))
    alias: Mapped[str] = mapped_column(String(32), default="production")
    schedule: Mapped[str] = mapped_column(String(128))
    source: Mapped[dict[str, Any]] = mapped_column(JSONType)
    sink: Mapped[dict[str, Any]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LeaseRow(Base):
    """Who may run a periodic task now: one row per task, held until ``expires_at``. Lets many
    workers and hosts share housekeeping (drift checks, garbage collection) without each doing it."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InstallationRow(Base):
    """What every worker and host of one installation must agree on and keep (the Excel
    add-in's id): written once, the first time it is needed, never changed."""

    __tablename__ = "installation"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnalysisRow(Base):
    """A version's quality analysis on its registration holdout (importance, curves, segments):
    written with the version when it is registered, or once on first request for older ones."""

    __tablename__ = "version_analyses"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"),
                                            primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)


class OutcomeJoinRow(Base):
    """One scored row of a model with outcome tracking on: what is needed to join the actual
    outcome the business records later (by prediction id or business key), and that outcome
    once it arrived. Kept for every scored row, unlike the sampled prediction log."""

    __tablename__ = "outcome_joins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    prediction_id: Mapped[str] = mapped_column(String(96), unique=True)
    business_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    prediction: Mapped[dict[str, Any]] = mapped_column(JSONType)  # {"value": label}
    probabilities: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    segments: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # categorical inputs
    actual: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)  # {"value"}
    observed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
