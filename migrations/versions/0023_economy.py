"""economy: the parameter store and its history

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-06 14:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'economy_parameters',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_economy_parameters')),
    )
    op.create_table(
        'economy_parameter_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('old_value', sa.JSON(), nullable=True),
        sa.Column('new_value', sa.JSON(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('proposal_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_economy_parameter_changes_actor_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_economy_parameter_changes')),
    )
    op.create_index('ix_economy_parameter_changes_name_at', 'economy_parameter_changes', ['name', 'at'], unique=False)


def downgrade():
    op.drop_index('ix_economy_parameter_changes_name_at', table_name='economy_parameter_changes')
    op.drop_table('economy_parameter_changes')
    op.drop_table('economy_parameters')
