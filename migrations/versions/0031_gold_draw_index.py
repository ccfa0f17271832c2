"""items: an index of each pack's open gold items by id, so that a gold draw reads a few entries from a random
starting point instead of sorting every gold item of the pack

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 09:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


OPEN_GOLD = "is_gold AND NOT is_exam AND status = 'open'"


def upgrade():
    op.create_index('ix_items_pack_gold', 'items', ['pack_id', 'id'], unique=False,
                    postgresql_where=sa.text(OPEN_GOLD), sqlite_where=sa.text(OPEN_GOLD))


def downgrade():
    op.drop_index('ix_items_pack_gold', table_name='items', postgresql_where=sa.text(OPEN_GOLD), sqlite_where=sa.text(OPEN_GOLD))
