"""task_packs.aggregation_requested_at: the database record of an aggregation still to run, which the
reconciler reads (a job killed mid-run, or a queue lost with Redis, is queued again from it)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('task_packs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('aggregation_requested_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('task_packs', schema=None) as batch_op:
        batch_op.drop_column('aggregation_requested_at')
