"""items.no_consensus_at: an item that reached its pack's maximum of answers without two people agreeing
on one (retired without a verified label, its pack's owner told)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('no_consensus_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('no_consensus_at')
