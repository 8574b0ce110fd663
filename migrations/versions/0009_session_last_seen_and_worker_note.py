"""session last_seen_at (idle timeout) and celery worker note (clamped events)

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('login_sessions') as batch:
        batch.add_column(sa.Column('last_seen_at', sa.Float(), nullable=True))
    with op.batch_alter_table('celery_workers') as batch:
        batch.add_column(sa.Column('note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('celery_workers') as batch:
        batch.drop_column('note')
    with op.batch_alter_table('login_sessions') as batch:
        batch.drop_column('last_seen_at')
