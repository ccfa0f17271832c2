"""quest catalogue rotation: which catalogue template a quest was made from, and for which day or ISO week

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('quests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('catalogue_slug', sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column('rotation_key', sa.String(length=16), nullable=True))
        # One quest per template and period: a rotation run twice (or by two processes at once) adds nothing.
        batch_op.create_unique_constraint(op.f('uq_quests_catalogue_slug'), ['catalogue_slug', 'rotation_key'])


def downgrade():
    with op.batch_alter_table('quests', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_quests_catalogue_slug'), type_='unique')
        batch_op.drop_column('rotation_key')
        batch_op.drop_column('catalogue_slug')
