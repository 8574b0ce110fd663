"""celery task ids in 16 bytes on SQLite: uuid, parent_id, root_id and retry_of of canonical uuids

Revision ID: 0015
Revises: 0014

An id in Celery's canonical form (lowercase 8-4-4-4-12 hex) becomes the uuid's 16 bytes, a BLOB,
as dashboard.store.task_ids stores new ones; any other id stays the text it is. The ids were about a
sixth of what a task cost, in its row and again in the primary key's index (bench.celery_ingest).
PostgreSQL keeps the text: nothing to do there. Rows are kept; SQLite reuses the freed pages.
"""
from alembic import op

from dashboard.store.task_ids import compact, expand


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

COLUMNS = ("uuid", "parent_id", "root_id", "retry_of")


def _rewrite(function) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    bind.connection.driver_connection.create_function("jobdash_task_id", 1, function, deterministic=True)
    changed = " OR ".join(f"{c} IS NOT jobdash_task_id({c})" for c in COLUMNS)
    op.execute(f"UPDATE celery_tasks SET {', '.join(f'{c} = jobdash_task_id({c})' for c in COLUMNS)} "
               f"WHERE {changed}")


def upgrade() -> None:
    _rewrite(compact)


def downgrade() -> None:
    _rewrite(expand)
