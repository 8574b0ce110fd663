"""celery tasks in fewer bytes: a task that is its own root stores root_id '', narrower and partial indexes

Revision ID: 0013
Revises: 0012

Measured with dbstat (bench.celery_ingest): the uuid again in root_id and in ix_celery_tasks_seen,
an index on worker no query can use (its filter is a substring match), and index entries for
SUCCESS tasks and for the NULL parent_id / retry_of of almost every task made up about half of
what a task cost. Rows are kept; SQLite reuses the freed pages (VACUUM gives them back to the disk).
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

NOT_SUCCESS = "state <> 'SUCCESS'"


def _partial(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.execute("UPDATE celery_tasks SET root_id = '' WHERE root_id = uuid")
    with op.batch_alter_table('celery_tasks', schema=None) as batch_op:
        for name in ('ix_celery_tasks_seen', 'ix_celery_tasks_state', 'ix_celery_tasks_worker',
                     'ix_celery_tasks_parent', 'ix_celery_tasks_retry_of'):
            batch_op.drop_index(name)
        batch_op.create_index('ix_celery_tasks_seen', ['source', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_celery_tasks_state', ['source', 'state', 'first_seen_at'], unique=False,
                              **_partial(NOT_SUCCESS))
        batch_op.create_index('ix_celery_tasks_parent', ['source', 'parent_id', 'first_seen_at'], unique=False,
                              **_partial("parent_id IS NOT NULL"))
        batch_op.create_index('ix_celery_tasks_retry_of', ['source', 'retry_of', 'first_seen_at'], unique=False,
                              **_partial("retry_of IS NOT NULL"))


def downgrade() -> None:
    with op.batch_alter_table('celery_tasks', schema=None) as batch_op:
        for name in ('ix_celery_tasks_seen', 'ix_celery_tasks_state', 'ix_celery_tasks_parent',
                     'ix_celery_tasks_retry_of'):
            batch_op.drop_index(name)
        batch_op.create_index('ix_celery_tasks_seen', ['source', 'first_seen_at', 'uuid'], unique=False)
        batch_op.create_index('ix_celery_tasks_state', ['source', 'state', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_celery_tasks_worker', ['source', 'worker', 'first_seen_at'], unique=False)
        batch_op.create_index('ix_celery_tasks_parent', ['parent_id'], unique=False)
        batch_op.create_index('ix_celery_tasks_retry_of', ['retry_of'], unique=False)
    op.execute("UPDATE celery_tasks SET root_id = uuid WHERE root_id = ''")
