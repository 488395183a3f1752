"""campaign.extra_vendors: vendors that extra rounds of contested items may go to (by measured quality)

Revision ID: 0005_extra_vendors
Revises: 0004_redaction
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0005_extra_vendors"
down_revision = "0004_redaction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_vendors", json_type, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("extra_vendors")
