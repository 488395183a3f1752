"""webhookevent.delivery_key: a verified delivery is acted on once (replays and re-deliveries recognised)

Revision ID: 0006_webhook_replay
Revises: 0005_extra_vendors
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_webhook_replay"
down_revision = "0005_extra_vendors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhookevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_key", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint("uq_webhookevent_vendor_delivery", ["vendor", "delivery_key"])


def downgrade() -> None:
    with op.batch_alter_table("webhookevent", schema=None) as batch_op:
        batch_op.drop_constraint("uq_webhookevent_vendor_delivery", type_="unique")
        batch_op.drop_column("delivery_key")
