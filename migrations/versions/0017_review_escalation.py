"""reviews.escalated_at: a review no reviewer took in time (or none could) goes to the moderators' queue

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 11:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_column('escalated_at')
