"""retrainjob.heartbeat_at: a running job's worker proves it is alive (service.domain.training_lease)

Revision ID: 0007_training_heartbeat
Revises: 0006_webhook_replay
"""
import sqlalchemy as sa
from alembic import op

import service.storage.types

revision = "0007_training_heartbeat"
down_revision = "0006_webhook_replay"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("retrainjob", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", service.storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("retrainjob", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
