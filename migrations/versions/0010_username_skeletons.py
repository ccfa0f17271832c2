"""users keep the UTS #39 skeleton of their name, unique: no new name may look like an existing one

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06 09:00:00

"""
from alembic import op
import sqlalchemy as sa

from sapien.accounts.names import username_skeleton


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username_skeleton', sa.Text(), nullable=True))
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('username', sa.String), sa.column('username_skeleton', sa.Text))
    connection = op.get_bind()
    seen = set()
    for user_id, username in connection.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)).all():
        value = username_skeleton(username)
        if value in seen:
            # Look-alike names from before this rule both stay; '#' is in no username, so the suffix
            # cannot match a real skeleton.
            value = f"{value}#{user_id}"
        seen.add(value)
        connection.execute(users.update().where(users.c.id == user_id).values(username_skeleton=value))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('username_skeleton', existing_type=sa.Text(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_users_username_skeleton'), ['username_skeleton'])


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_username_skeleton'), type_='unique')
        batch_op.drop_column('username_skeleton')
