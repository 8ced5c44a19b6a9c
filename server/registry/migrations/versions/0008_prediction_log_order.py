"""The prediction log read newest first per model (OData pages, drift windows) without sorting
the whole log: an index on (model_name, id). Found by the soak test, where each OData page sorted
every logged row of the model and latency grew with the log.

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_prediction_log_model_id", "prediction_log", ["model_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_prediction_log_model_id", "prediction_log")
