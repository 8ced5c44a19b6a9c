"""Each version's quality analysis on its registration holdout (the model report's importance,
curves and segments), one row per version.

Revision ID: 0012_analyses
Revises: 0011_people
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012_analyses"
down_revision = "0011_people"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_analyses",
        sa.Column("version_id", sa.Integer,
                  sa.ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("version_analyses")
