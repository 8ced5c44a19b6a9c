"""The runtime each version is scored with (onnxruntime when compiled and verified, else
scikit-learn), why, and the compiled artifact.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("runtime", sa.String(16), nullable=False,
                                   server_default="sklearn"))
        batch.add_column(sa.Column("runtime_note", sa.Text, nullable=False,
                                   server_default="registered before compiled scoring existed"))
        batch.add_column(sa.Column("compiled_artifact", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("compiled_artifact")
        batch.drop_column("runtime_note")
        batch.drop_column("runtime")
