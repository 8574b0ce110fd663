"""the hour rollups' index holds `step` too, so that SQLite reads hour series from it alone

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

HOURS = sa.text('step = 3600')


def _index(columns: list[str]) -> None:
    with op.batch_alter_table('rollups') as batch:
        batch.drop_index('ix_rollups_hours', sqlite_where=HOURS, postgresql_where=HOURS)
        batch.create_index('ix_rollups_hours', columns, unique=False, sqlite_where=HOURS, postgresql_where=HOURS)


def upgrade() -> None:
    _index(['source', 'metric', 'label', 'bucket', 'step', 'count', 'total', 'min', 'max'])


def downgrade() -> None:
    _index(['source', 'metric', 'label', 'bucket', 'count', 'total', 'min', 'max'])
