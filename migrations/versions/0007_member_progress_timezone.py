"""member progress keeps a copy of the member's time zone (the streak day without a user query)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 07:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('member_progress', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('member_progress', schema=None) as batch_op:
        batch_op.drop_column('timezone')
