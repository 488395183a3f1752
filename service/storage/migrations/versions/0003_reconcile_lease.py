"""campaign.reconcile_claimed_at: one reconciliation per campaign at a time

Revision ID: 0003_reconcile_lease
Revises: 0002_api
"""
import sqlalchemy as sa
from alembic import op

import service.storage.types

revision = "0003_reconcile_lease"
down_revision = "0002_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reconcile_claimed_at", service.storage.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("reconcile_claimed_at")
