"""store gaps: spans of writes that never reached the store, until reconciled

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('store_gaps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=82), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('lost', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('recovered', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('settled_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('store_gaps', schema=None) as batch_op:
        batch_op.create_index('ix_store_gaps_source', ['kind', 'source', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('store_gaps', schema=None) as batch_op:
        batch_op.drop_index('ix_store_gaps_source')
    op.drop_table('store_gaps')
