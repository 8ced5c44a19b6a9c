"""Traffic by user: scoring requests, errors and rows per model, hour and caller (a key or a
person), counts only.

Revision ID: 0014_traffic_by_user
Revises: 0013_outcomes
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_traffic_by_user"
down_revision = "0013_outcomes"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "traffic_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(64), nullable=False, index=True),
        sa.Column("hour", TS, nullable=False, index=True),
        sa.Column("caller", sa.String(300), nullable=False),
        sa.Column("caller_name", sa.String(255), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("model_name", "hour", "caller", name="uq_traffic_users_bucket"),
    )


def downgrade() -> None:
    op.drop_table("traffic_users")
