"""People whose sign-in is cut off here (a leaver, a stolen session) before their tokens expire.

Revision ID: 0011_people
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_people"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disabled_people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("disabled_by", sa.String(255), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_disabled_person"),
    )


def downgrade() -> None:
    op.drop_table("disabled_people")
