"""celery tasks by name: the name index holds only tasks that did not succeed

Revision ID: 0014
Revises: 0013

Its one reader, celery_queries.failures (the failed tasks of a name in a time range, which bulk retry
reads), asks for FAILURE only; the task list matches names by substring, which no index serves. Every
successful task's entry, most tasks by far, cost about 40 bytes (bench.celery_ingest). Rows are kept.
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

NOT_SUCCESS = "state <> 'SUCCESS'"


def upgrade() -> None:
    with op.batch_alter_table('celery_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_celery_tasks_name')
        batch_op.create_index('ix_celery_tasks_name', ['source', 'name', 'first_seen_at'], unique=False,
                              sqlite_where=sa.text(NOT_SUCCESS), postgresql_where=sa.text(NOT_SUCCESS))


def downgrade() -> None:
    with op.batch_alter_table('celery_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_celery_tasks_name')
        batch_op.create_index('ix_celery_tasks_name', ['source', 'name', 'first_seen_at'], unique=False)
