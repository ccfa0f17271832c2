"""items: external ids up to 2,048 characters, unique per pack through their SHA-256 (`external_key`),
since a B-tree entry cannot hold 2,048 characters of UTF-8

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:00:00

"""
import hashlib

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_key', sa.String(length=64), nullable=True))
    items = sa.table('items', sa.column('id', sa.Integer), sa.column('external_id', sa.String), sa.column('external_key', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(items.c.id, items.c.external_id)).all()
    for start in range(0, len(rows), 5000):
        connection.execute(
            items.update().where(items.c.id == sa.bindparam('row_id')).values(external_key=sa.bindparam('key')),
            [{'row_id': row_id, 'key': hashlib.sha256(external_id.encode('utf-8')).hexdigest()} for row_id, external_id in rows[start:start + 5000]],
        )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.alter_column('external_key', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('external_id', existing_type=sa.String(length=128), type_=sa.String(length=2048), existing_nullable=False)
        batch_op.drop_constraint('uq_items_pack_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_items_pack_id'), ['pack_id', 'external_key'])


def downgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_constraint('uq_items_pack_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_items_pack_id'), ['pack_id', 'external_id'])
        batch_op.alter_column('external_id', existing_type=sa.String(length=2048), type_=sa.String(length=128), existing_nullable=False)
        batch_op.drop_column('external_key')
