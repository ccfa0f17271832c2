"""items: the claim index follows the claim's order (most slots taken first, then oldest), so the next
item is the first index entry a member has not leased instead of a sort of every open item

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_pack_open')
        batch_op.create_index('ix_items_pack_open', ['pack_id', 'status', 'is_gold', sa.text('slots_taken DESC'), 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_pack_open')
        batch_op.create_index('ix_items_pack_open', ['pack_id', 'status', 'is_gold', 'slots_taken'], unique=False)
