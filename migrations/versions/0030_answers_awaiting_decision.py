"""answers awaiting decision: quality decides items in a job, from a flag each accepted answer carries

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 05:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('submissions', sa.Column('awaiting_decision', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index('ix_submissions_awaiting_decision', 'submissions', ['id'], unique=False,
                    postgresql_where=sa.text('awaiting_decision'), sqlite_where=sa.text('awaiting_decision'))


def downgrade():
    op.drop_index('ix_submissions_awaiting_decision', table_name='submissions',
                  postgresql_where=sa.text('awaiting_decision'), sqlite_where=sa.text('awaiting_decision'))
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('awaiting_decision')
