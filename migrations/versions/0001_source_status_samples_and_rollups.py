"""source status, samples and rollups

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 11:49:34.746319
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rollups',
    sa.Column('source', sa.String(length=82), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('min', sa.Float(), nullable=False),
    sa.Column('max', sa.Float(), nullable=False),
    sa.Column('last', sa.Float(), nullable=False),
    sa.Column('last_ts', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'metric', 'label', 'step', 'bucket', name=op.f('pk_rollups'))
    )
    with op.batch_alter_table('rollups', schema=None) as batch_op:
        batch_op.create_index('ix_rollups_step_bucket', ['step', 'bucket'], unique=False)

    op.create_table('samples',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=82), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_samples'))
    )
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.create_index('ix_samples_series_ts', ['source', 'metric', 'label', 'ts'], unique=False)
        batch_op.create_index('ix_samples_ts', ['ts'], unique=False)

    op.create_table('source_status',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('last_success_at', sa.Float(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.Float(), nullable=True),
    sa.Column('last_poll_ms', sa.Float(), nullable=True),
    sa.Column('headline', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'name', name=op.f('pk_source_status'))
    )


def downgrade() -> None:
    op.drop_table('source_status')
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_index('ix_samples_ts')
        batch_op.drop_index('ix_samples_series_ts')

    op.drop_table('samples')
    with op.batch_alter_table('rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_rollups_step_bucket')

    op.drop_table('rollups')
