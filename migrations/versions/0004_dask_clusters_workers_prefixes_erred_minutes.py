"""dask clusters workers prefixes erred and minutes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 20:52:07.302773
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dask_clusters',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_dask_clusters'))
    )
    op.create_table('dask_erred',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('prefix', sa.String(length=255), nullable=False),
    sa.Column('worker', sa.String(length=255), nullable=True),
    sa.Column('erred_at', sa.Float(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('exception', sa.Text(), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_at', sa.Float(), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'key', name=op.f('pk_dask_erred'))
    )
    with op.batch_alter_table('dask_erred', schema=None) as batch_op:
        batch_op.create_index('ix_dask_erred_newest', ['source', 'erred_at', 'key'], unique=False)
        batch_op.create_index('ix_dask_erred_prefix', ['source', 'prefix', 'state'], unique=False)

    op.create_table('dask_minutes',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=255), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.Column('erred', sa.Integer(), nullable=False),
    sa.Column('duration_sum', sa.Float(), nullable=False),
    sa.Column('duration_hist', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'prefix', 'bucket', name=op.f('pk_dask_minutes'))
    )
    with op.batch_alter_table('dask_minutes', schema=None) as batch_op:
        batch_op.create_index('ix_dask_minutes_bucket', ['source', 'bucket'], unique=False)

    op.create_table('dask_prefixes',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=255), nullable=False),
    sa.Column('waiting', sa.Integer(), nullable=False),
    sa.Column('processing', sa.Integer(), nullable=False),
    sa.Column('memory', sa.Integer(), nullable=False),
    sa.Column('erred', sa.Integer(), nullable=False),
    sa.Column('released', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'prefix', name=op.f('pk_dask_prefixes'))
    )
    op.create_table('dask_workers',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('nanny', sa.String(length=255), nullable=True),
    sa.Column('nthreads', sa.Integer(), nullable=False),
    sa.Column('memory_limit', sa.Float(), nullable=True),
    sa.Column('memory', sa.Float(), nullable=False),
    sa.Column('managed', sa.Float(), nullable=False),
    sa.Column('unmanaged', sa.Float(), nullable=False),
    sa.Column('spilled', sa.Float(), nullable=False),
    sa.Column('cpu', sa.Float(), nullable=False),
    sa.Column('executing', sa.Integer(), nullable=False),
    sa.Column('ready', sa.Integer(), nullable=False),
    sa.Column('in_memory', sa.Integer(), nullable=False),
    sa.Column('last_seen', sa.Float(), nullable=True),
    sa.Column('first_seen_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('gone_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('source', 'address', name=op.f('pk_dask_workers'))
    )


def downgrade() -> None:
    op.drop_table('dask_workers')
    op.drop_table('dask_prefixes')
    with op.batch_alter_table('dask_minutes', schema=None) as batch_op:
        batch_op.drop_index('ix_dask_minutes_bucket')

    op.drop_table('dask_minutes')
    with op.batch_alter_table('dask_erred', schema=None) as batch_op:
        batch_op.drop_index('ix_dask_erred_prefix')
        batch_op.drop_index('ix_dask_erred_newest')

    op.drop_table('dask_erred')
    op.drop_table('dask_clusters')
