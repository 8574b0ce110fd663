"""history: celery hour outcomes, an hour-rollup index, runtime range per bucket, source state transitions

Revision ID: 0007
Revises: 0006
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rollups', schema=None) as batch_op:
        batch_op.create_index('ix_rollups_hours', ['source', 'metric', 'label', 'bucket', 'count', 'total', 'min', 'max'],
                              unique=False, sqlite_where=sa.text('step = 3600'), postgresql_where=sa.text('step = 3600'))
    with op.batch_alter_table('celery_minutes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runtime_min', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('runtime_max', sa.Float(), nullable=True))
    op.create_table('celery_hours',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('dimension', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('succeeded', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('retried', sa.Integer(), nullable=False),
    sa.Column('runtime_sum', sa.Float(), nullable=False),
    sa.Column('runtime_hist', sa.JSON(), nullable=False),
    sa.Column('runtime_min', sa.Float(), nullable=True),
    sa.Column('runtime_max', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('source', 'dimension', 'key', 'bucket', name=op.f('pk_celery_hours'))
    )
    with op.batch_alter_table('celery_hours', schema=None) as batch_op:
        batch_op.create_index('ix_celery_hours_outcomes', ['source', 'dimension', 'bucket', 'key', 'succeeded', 'failed', 'retried'], unique=False)
    op.create_table('source_transitions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_transitions'))
    )
    with op.batch_alter_table('source_transitions', schema=None) as batch_op:
        batch_op.create_index('ix_source_transitions_source_at', ['kind', 'name', 'at'], unique=False)
    _hours_from_minutes()


def _hours_from_minutes() -> None:
    """Fold the minutes already stored into hours, histograms included (their runtime range is unknown)."""
    bind = op.get_bind()
    hours: dict[tuple, list] = {}
    rows = bind.execute(sa.text("SELECT source, dimension, key, bucket, succeeded, failed, retried, runtime_sum, "
                                "runtime_hist FROM celery_minutes"))
    for source, dimension, key, bucket, succeeded, failed, retried, runtime_sum, hist in rows:
        h = hours.setdefault((source, dimension, key, bucket // 3600 * 3600), [0, 0, 0, 0.0, {}])
        h[0] += succeeded
        h[1] += failed
        h[2] += retried
        h[3] += runtime_sum
        for b, n in (json.loads(hist) if isinstance(hist, str) else hist or {}).items():
            h[4][b] = h[4].get(b, 0) + n
    if hours:
        bind.execute(sa.text("INSERT INTO celery_hours (source, dimension, key, bucket, succeeded, failed, retried, "
                             "runtime_sum, runtime_hist) VALUES (:source, :dimension, :key, :bucket, :succeeded, "
                             ":failed, :retried, :runtime_sum, :runtime_hist)").bindparams(
                                 sa.bindparam("runtime_hist", type_=sa.JSON())),
                     [{"source": k[0], "dimension": k[1], "key": k[2], "bucket": k[3], "succeeded": h[0],
                       "failed": h[1], "retried": h[2], "runtime_sum": h[3], "runtime_hist": h[4]}
                      for k, h in hours.items()])


def downgrade() -> None:
    with op.batch_alter_table('source_transitions', schema=None) as batch_op:
        batch_op.drop_index('ix_source_transitions_source_at')
    op.drop_table('source_transitions')
    with op.batch_alter_table('celery_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_celery_hours_outcomes')
    op.drop_table('celery_hours')
    with op.batch_alter_table('celery_minutes', schema=None) as batch_op:
        batch_op.drop_column('runtime_max')
        batch_op.drop_column('runtime_min')
    with op.batch_alter_table('rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_rollups_hours', sqlite_where=sa.text('step = 3600'), postgresql_where=sa.text('step = 3600'))
