"""Prediction log (sampled rows scored, for drift and the OData feed) and per-model monitoring.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("monitoring", JSON, nullable=False, server_default="{}"))
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("client", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("prediction", JSON, nullable=True),
        sa.Column("probability", sa.Float, nullable=True),
    )
    op.create_index("ix_prediction_log_model_time", "prediction_log", ["model_name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_prediction_log_model_time", "prediction_log")
    op.drop_table("prediction_log")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("monitoring")
