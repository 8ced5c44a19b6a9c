"""Outcome tracking: one join row per scored row of a tracked model (prediction id, business key,
prediction, probabilities, categorical inputs) and the actual outcome once it is recorded.

Revision ID: 0013_outcomes
Revises: 0012_analyses
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013_outcomes"
down_revision = "0012_analyses"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outcome_joins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.String(96), nullable=False, unique=True),
        sa.Column("business_key", sa.String(255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("prediction", JSON, nullable=False),
        sa.Column("probabilities", JSON, nullable=True),
        sa.Column("segments", JSON, nullable=False),
        sa.Column("actual", JSON, nullable=True),
        sa.Column("observed_at", TS, nullable=True),
        sa.Column("recorded_at", TS, nullable=True),
    )
    # an outcome by business key: the latest prediction for the key at or before its time,
    # one backward probe (ties on time: the last written, hence id)
    op.create_index("ix_outcome_joins_key", "outcome_joins",
                    ["model_name", "business_key", "created_at", "id"])
    op.create_index("ix_outcome_joins_time", "outcome_joins", ["model_name", "created_at"])
    op.create_index("ix_outcome_joins_observed", "outcome_joins", ["model_name", "observed_at"])


def downgrade() -> None:
    op.drop_index("ix_outcome_joins_observed", "outcome_joins")
    op.drop_index("ix_outcome_joins_time", "outcome_joins")
    op.drop_index("ix_outcome_joins_key", "outcome_joins")
    op.drop_table("outcome_joins")
