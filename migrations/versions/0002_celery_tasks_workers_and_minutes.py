"""celery tasks, workers and minutes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 11:57:27.430912
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('celery_minutes',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('dimension', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('succeeded', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('retried', sa.Integer(), nullable=False),
    sa.Column('runtime_sum', sa.Float(), nullable=False),
    sa.Column('runtime_hist', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'dimension', 'key', 'bucket', name=op.f('pk_celery_minutes'))
    )
    with op.batch_alter_table('celery_minutes', schema=None) as batch_op:
        batch_op.create_index('ix_celery_minutes_bucket', ['source', 'bucket'], unique=False)

    op.create_table('celery_tasks',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('uuid', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_at', sa.Float(), nullable=False),
    sa.Column('first_seen_at', sa.Float(), nullable=False),
    sa.Column('sent_at', sa.Float(), nullable=True),
    sa.Column('received_at', sa.Float(), nullable=True),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('succeeded_at', sa.Float(), nullable=True),
    sa.Column('failed_at', sa.Float(), nullable=True),
    sa.Column('retried_at', sa.Float(), nullable=True),
    sa.Column('revoked_at', sa.Float(), nullable=True),
    sa.Column('rejected_at', sa.Float(), nullable=True),
    sa.Column('runtime', sa.Float(), nullable=True),
    sa.Column('worker', sa.String(length=255), nullable=True),
    sa.Column('queue', sa.String(length=255), nullable=True),
    sa.Column('exchange', sa.String(length=255), nullable=True),
    sa.Column('routing_key', sa.String(length=255), nullable=True),
    sa.Column('retries', sa.Integer(), nullable=True),
    sa.Column('eta', sa.String(length=64), nullable=True),
    sa.Column('expires', sa.String(length=64), nullable=True),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('root_id', sa.String(length=64), nullable=True),
    sa.Column('args', sa.Text(), nullable=True),
    sa.Column('kwargs', sa.Text(), nullable=True),
    sa.Column('args_truncated', sa.Boolean(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('exception', sa.Text(), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('retry_of', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('source', 'uuid', name=op.f('pk_celery_tasks'))
    )
    with op.batch_alter_table('celery_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_celery_tasks_name', ['source', 'name', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_celery_tasks_parent', ['parent_id'], unique=False)
        batch_op.create_index('ix_celery_tasks_retry_of', ['retry_of'], unique=False)
        batch_op.create_index('ix_celery_tasks_seen', ['source', 'first_seen_at', 'uuid'], unique=False)
        batch_op.create_index('ix_celery_tasks_state', ['source', 'state', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_celery_tasks_worker', ['source', 'worker', 'first_seen_at'], unique=False)

    op.create_table('celery_workers',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('last_heartbeat', sa.Float(), nullable=True),
    sa.Column('freq', sa.Float(), nullable=True),
    sa.Column('active', sa.Integer(), nullable=True),
    sa.Column('processed', sa.Integer(), nullable=True),
    sa.Column('loadavg', sa.JSON(), nullable=True),
    sa.Column('sw_ident', sa.String(length=64), nullable=True),
    sa.Column('sw_ver', sa.String(length=64), nullable=True),
    sa.Column('sw_sys', sa.String(length=64), nullable=True),
    sa.Column('info', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'hostname', name=op.f('pk_celery_workers'))
    )


def downgrade() -> None:
    op.drop_table('celery_workers')
    with op.batch_alter_table('celery_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_celery_tasks_worker')
        batch_op.drop_index('ix_celery_tasks_state')
        batch_op.drop_index('ix_celery_tasks_seen')
        batch_op.drop_index('ix_celery_tasks_retry_of')
        batch_op.drop_index('ix_celery_tasks_parent')
        batch_op.drop_index('ix_celery_tasks_name')

    op.drop_table('celery_tasks')
    with op.batch_alter_table('celery_minutes', schema=None) as batch_op:
        batch_op.drop_index('ix_celery_minutes_bucket')

    op.drop_table('celery_minutes')
