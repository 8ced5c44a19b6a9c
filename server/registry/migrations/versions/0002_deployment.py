"""Continuous deployment: policies, the version pipeline and gates, rollouts, traffic, webhooks.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("policy", JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("model_versions") as batch:
        # versions registered before this revision were deployed by hand: nothing to process
        batch.add_column(sa.Column("pipeline", sa.String(16), nullable=False,
                                   server_default="done"))
        batch.add_column(sa.Column("gate_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("gates", JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("claimed_at", TS, nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("sample_artifact", sa.String(255), nullable=True))
        batch.add_column(sa.Column("holdout_artifact", sa.String(255), nullable=True))
        batch.add_column(sa.Column("target", sa.String(128), nullable=True))
        batch.create_index("ix_model_versions_pipeline", ["pipeline"])
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("baseline", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("detail", JSON, nullable=False),
    )
    op.create_table(
        "traffic",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("minute", TS, nullable=False, index=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("latency_sum", sa.Float, nullable=False),
        sa.Column("latency_buckets", JSON, nullable=False),
        sa.Column("shadow_compared", sa.BigInteger, nullable=False),
        sa.Column("shadow_agreed", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("model_name", "version", "worker", "minute",
                            name="uq_traffic_bucket"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False, index=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("failed", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.String(512), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("traffic")
    op.drop_table("rollouts")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_index("ix_model_versions_pipeline")
        for column in ("target", "holdout_artifact", "sample_artifact", "claimed_by",
                       "claimed_at", "gates", "gate_status", "pipeline"):
            batch.drop_column(column)
    with op.batch_alter_table("models") as batch:
        batch.drop_column("policy")
