"""service API tables: api tokens, SLA thresholds, webhook events, api secrets

Revision ID: 0002_api
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import service.storage.types
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0002_api'
down_revision = '0001'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
_TS = service.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('apitoken',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('scope', sa.Enum('auditor', 'operator', 'admin', name='scope'), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('last_used_at', _TS, nullable=True),
    sa.Column('revoked_at', _TS, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('apitoken', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apitoken_token_hash'), ['token_hash'], unique=True)

    op.create_table('slathreshold',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('vendor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('limit', sa.Float(), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('vendor', 'metric', name='uq_sla_vendor_metric')
    )
    with op.batch_alter_table('slathreshold', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slathreshold_vendor'), ['vendor'], unique=False)

    op.create_table('webhookevent',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('vendor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=True),
    sa.Column('headers', _JSON, nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('batch_id', sa.Uuid(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('received_at', _TS, nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhookevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhookevent_vendor'), ['vendor'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhookevent_batch_id'), ['batch_id'], unique=False)

    op.create_table('apisecret',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('apisecret')
    with op.batch_alter_table('webhookevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhookevent_batch_id'))
        batch_op.drop_index(batch_op.f('ix_webhookevent_vendor'))
    op.drop_table('webhookevent')
    with op.batch_alter_table('slathreshold', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slathreshold_vendor'))
    op.drop_table('slathreshold')
    with op.batch_alter_table('apitoken', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apitoken_token_hash'))
    op.drop_table('apitoken')
    sa.Enum(name='scope').drop(op.get_bind(), checkfirst=True)
