"""celery task names, workers, queues and routing keys stored once, in celery_names; tasks keep their ids

Revision ID: 0016
Revises: 0015

A few dozen texts repeated in every task cost about 40 bytes of its row (bench.celery_ingest); an id
costs one or two. Every task keeps what it showed. On SQLite dropping the text columns rewrites the
table: with millions of tasks stored this takes minutes, once.
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

NAMED = ("name", "worker", "queue", "routing_key")
NOT_SUCCESS = "state <> 'SUCCESS'"


def _name_index(column: str) -> None:
    op.create_index('ix_celery_tasks_name', 'celery_tasks', ['source', column, 'first_seen_at'], unique=False,
                    sqlite_where=sa.text(NOT_SUCCESS), postgresql_where=sa.text(NOT_SUCCESS))


def upgrade() -> None:
    op.create_table(
        'celery_names',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('value', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_celery_names')),
        sa.UniqueConstraint('value', name=op.f('uq_celery_names_value')),
    )
    for field in NAMED:
        op.add_column('celery_tasks', sa.Column(f'{field}_id', sa.Integer(), nullable=True))
    op.execute("INSERT INTO celery_names (value) " + " UNION ".join(
        f"SELECT {field} FROM celery_tasks WHERE {field} IS NOT NULL" for field in NAMED))
    op.execute("UPDATE celery_tasks SET " + ", ".join(
        f"{field}_id = (SELECT id FROM celery_names WHERE value = celery_tasks.{field})" for field in NAMED))
    op.drop_index('ix_celery_tasks_name', table_name='celery_tasks')
    for field in NAMED:
        op.drop_column('celery_tasks', field)
    _name_index('name_id')


def downgrade() -> None:
    for field in NAMED:
        op.add_column('celery_tasks', sa.Column(field, sa.String(length=255), nullable=True))
    op.execute("UPDATE celery_tasks SET " + ", ".join(
        f"{field} = (SELECT value FROM celery_names WHERE id = celery_tasks.{field}_id)" for field in NAMED))
    op.drop_index('ix_celery_tasks_name', table_name='celery_tasks')
    for field in NAMED:
        op.drop_column('celery_tasks', f'{field}_id')
    _name_index('name')
    op.drop_table('celery_names')
