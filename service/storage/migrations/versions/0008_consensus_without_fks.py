"""consensuslabel without foreign keys: derived rows, rewritten whole by every full reconciliation

A consensus row is computed from judgments whose campaign and item foreign keys the ledger already checks
(service.domain.reconcile reads item ids only from stored judgments), and nothing deletes items or
campaigns. The two per-row checks were ~45% of the server's cost of writing a consensus row: a full
reconciliation at 100k items x 5 raters (3 rows per item) took 7.4 s with them and 5.7 s without
(standalone, PostgreSQL 15, this 2-core machine). Judgments, the ledger, keep theirs.

Revision ID: 0008_consensus_without_fks
Revises: 0007_training_heartbeat
"""
from alembic import op

revision = "0008_consensus_without_fks"
down_revision = "0007_training_heartbeat"
branch_labels = None
depends_on = None

# SQLite keeps 0001's constraints unnamed: batch mode names them by this convention to drop them
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table("consensuslabel", naming_convention=SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint("fk_consensuslabel_campaign_id_campaign", type_="foreignkey")
            batch_op.drop_constraint("fk_consensuslabel_item_id_item", type_="foreignkey")
        return
    op.drop_constraint("consensuslabel_campaign_id_fkey", "consensuslabel", type_="foreignkey")
    op.drop_constraint("consensuslabel_item_id_fkey", "consensuslabel", type_="foreignkey")


def downgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table("consensuslabel", schema=None) as batch_op:
        for column, table in (("campaign_id", "campaign"), ("item_id", "item")):
            # named as upgrade() finds them again: SQLite by the convention, PostgreSQL by its default names
            name = f"fk_consensuslabel_{column}_{table}" if sqlite else f"consensuslabel_{column}_fkey"
            batch_op.create_foreign_key(name, table, [column], ["id"])
