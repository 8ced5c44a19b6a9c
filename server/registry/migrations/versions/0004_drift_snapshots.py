"""Drift snapshots: each model's drift report per feature, every few minutes, for the OData feed
and for charts of drift over time.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("psi", sa.Float, nullable=True),
        sa.Column("distance", sa.Float, nullable=True),
        sa.Column("null_rate", sa.Float, nullable=True),
        sa.Column("out_of_range_rate", sa.Float, nullable=True),
        sa.Column("unknown_rate", sa.Float, nullable=True),
    )
    op.create_index("ix_drift_snapshots_model_time", "drift_snapshots",
                    ["model_name", "computed_at"])


def downgrade() -> None:
    op.drop_index("ix_drift_snapshots_model_time", "drift_snapshots")
    op.drop_table("drift_snapshots")
