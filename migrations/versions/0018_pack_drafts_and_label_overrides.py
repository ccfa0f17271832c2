"""task packs start as drafts (a new status, existing packs stay open); a moderator's override of a
verified label (who, when, why), which later aggregation leaves alone

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('task_packs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_task_packs_status_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_task_packs_status_known'), "status IN ('draft', 'open', 'paused', 'closed')")
    with op.batch_alter_table('verified_labels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overridden_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('overridden_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('override_reason', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_verified_labels_overridden_by_users'), 'users', ['overridden_by'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('verified_labels', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_verified_labels_overridden_by_users'), type_='foreignkey')
        batch_op.drop_column('override_reason')
        batch_op.drop_column('overridden_at')
        batch_op.drop_column('overridden_by')
    op.execute("UPDATE task_packs SET status = 'open' WHERE status = 'draft'")
    with op.batch_alter_table('task_packs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_task_packs_status_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_task_packs_status_known'), "status IN ('open', 'paused', 'closed')")
