"""celery minutes and hours: one row per bucket for all tasks (dimension and key "all"), from the per-name rows

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

from dashboard.store import runtime_hist


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

COUNTS = ('succeeded', 'failed', 'retried', 'runtime_sum')


def upgrade() -> None:
    """Sum each bucket's per-name rows (tasks stored before this counted only under a name)."""
    bind = op.get_bind()
    for table in ('celery_minutes', 'celery_hours'):
        t = sa.table(table, *(sa.column(c) for c in ('source', 'dimension', 'key', 'bucket', *COUNTS,
                                                      'runtime_min', 'runtime_max')),
                     sa.column('runtime_hist', sa.LargeBinary()))
        buckets: dict[tuple, list] = {}
        for row in bind.execute(sa.select(t).where(t.c.dimension == 'name')).mappings():
            buckets.setdefault((row['source'], row['bucket']), []).append(row)
        rows = []
        for (source, bucket), named in buckets.items():
            lows = [r['runtime_min'] for r in named if r['runtime_min'] is not None]
            highs = [r['runtime_max'] for r in named if r['runtime_max'] is not None]
            rows.append({'source': source, 'dimension': 'all', 'key': 'all', 'bucket': bucket,
                         **{c: sum(r[c] for r in named) for c in COUNTS},
                         'runtime_hist': runtime_hist.encode(runtime_hist.total([runtime_hist.decode(r['runtime_hist'])
                                                                                 for r in named])),
                         'runtime_min': min(lows, default=None), 'runtime_max': max(highs, default=None)})
        if rows:
            bind.execute(sa.insert(t), rows)


def downgrade() -> None:
    for table in ('celery_minutes', 'celery_hours'):
        op.execute(f"DELETE FROM {table} WHERE dimension = 'all'")
