"""kafka groups partitions and topics

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 20:55:55.614515
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kafka_groups',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('group_name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('burrow_status', sa.String(length=8), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('lag', sa.BigInteger(), nullable=False),
    sa.Column('lag_seconds', sa.Float(), nullable=True),
    sa.Column('extrapolated', sa.Boolean(), nullable=False),
    sa.Column('topics', sa.JSON(), nullable=False),
    sa.Column('partitions', sa.Integer(), nullable=False),
    sa.Column('members', sa.Integer(), nullable=True),
    sa.Column('members_note', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=True),
    sa.Column('consume_rate', sa.Float(), nullable=True),
    sa.Column('last_commit', sa.Float(), nullable=True),
    sa.Column('complete', sa.Float(), nullable=False),
    sa.Column('max_partition', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'group_name', name=op.f('pk_kafka_groups'))
    )
    op.create_table('kafka_partitions',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('group_name', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('partition_no', sa.Integer(), nullable=False),
    sa.Column('committed', sa.BigInteger(), nullable=False),
    sa.Column('end_offset', sa.BigInteger(), nullable=False),
    sa.Column('lag', sa.BigInteger(), nullable=False),
    sa.Column('lag_seconds', sa.Float(), nullable=True),
    sa.Column('extrapolated', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('last_commit', sa.Float(), nullable=True),
    sa.Column('consume_rate', sa.Float(), nullable=True),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('gone', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('window_start', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'group_name', 'topic', 'partition_no', name=op.f('pk_kafka_partitions'))
    )
    op.create_table('kafka_topics',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('partitions', sa.Integer(), nullable=False),
    sa.Column('end_offset', sa.BigInteger(), nullable=False),
    sa.Column('produce_rate', sa.Float(), nullable=True),
    sa.Column('consumers', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'topic', name=op.f('pk_kafka_topics'))
    )


def downgrade() -> None:
    op.drop_table('kafka_topics')
    op.drop_table('kafka_partitions')
    op.drop_table('kafka_groups')
