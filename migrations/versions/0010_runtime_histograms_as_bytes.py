"""runtime histograms as packed counts (dashboard.store.runtime_hist) instead of JSON objects

Revision ID: 0010
Revises: 0009
"""
import json

from alembic import op
import sqlalchemy as sa

from dashboard.store import runtime_hist


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# (table, histogram column, primary key)
HISTOGRAMS = (
    ('celery_minutes', 'runtime_hist', ('source', 'dimension', 'key', 'bucket')),
    ('celery_hours', 'runtime_hist', ('source', 'dimension', 'key', 'bucket')),
    ('dask_minutes', 'duration_hist', ('source', 'prefix', 'bucket')),
)
CHUNK = 5000


def _from_json(value) -> bytes:
    bins = json.loads(value) if isinstance(value, str) else value or {}
    counts = runtime_hist.empty()
    for index, n in bins.items():
        counts[min(int(index), runtime_hist.RUNTIME_BINS - 1)] += n
    return runtime_hist.encode(counts)


def _to_json(value) -> dict[str, int]:
    return {str(i): n for i, n in enumerate(runtime_hist.decode(value)) if n}


def _convert(old_type, new_type, convert) -> None:
    """Rewrite each histogram column through `convert`, by way of a new column of `new_type`."""
    bind = op.get_bind()
    for table, column, key in HISTOGRAMS:
        staged = f'{column}_new'
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(staged, new_type, nullable=True))
        t = sa.table(table, *(sa.column(c) for c in key), sa.column(column, old_type), sa.column(staged, new_type))
        rows = bind.execute(sa.select(*(t.c[c] for c in key), t.c[column])).all()
        update = (sa.update(t).where(*(t.c[c] == sa.bindparam(f'k_{c}') for c in key))
                  .values({staged: sa.bindparam('v')}))
        for i in range(0, len(rows), CHUNK):
            bind.execute(update, [{**{f'k_{c}': row[n] for n, c in enumerate(key)}, 'v': convert(row[-1])}
                                  for row in rows[i:i + CHUNK]])
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
            batch.alter_column(staged, new_column_name=column, existing_type=new_type, nullable=False)


def upgrade() -> None:
    _convert(sa.JSON(), sa.LargeBinary(), _from_json)


def downgrade() -> None:
    _convert(sa.LargeBinary(), sa.JSON(), _to_json)
