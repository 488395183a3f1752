"""redactionrecord: what PII was redacted from each item before it left for a vendor

Revision ID: 0004_redaction
Revises: 0003_reconcile_lease
"""
import sqlalchemy as sa

from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import service.storage.types

revision = "0004_redaction"
down_revision = "0003_reconcile_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
    op.create_table(
        "redactionrecord",
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("counts", json_type, nullable=False),
        sa.Column("digests", json_type, nullable=False),
        sa.Column("created_at", service.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batch.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("batch_id", "item_id"),
    )



def downgrade() -> None:
    op.drop_table("redactionrecord")
