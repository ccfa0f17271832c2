"""economy: the parameter store and its history, conversion epochs, stake positions, slashes, revenue
payments and statements; submissions record the stake multiplier their points were paid at

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 14:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
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
    op.create_table(
        'economy_epochs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('members', sa.Integer(), nullable=False),
        sa.Column('points', sa.Numeric(precision=40, scale=0), nullable=False),
        sa.Column('tokens', sa.Numeric(precision=40, scale=0), nullable=False),
        sa.Column('staked', sa.Numeric(precision=40, scale=0), nullable=False),
        sa.Column('skipped', sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_economy_epochs_status_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_economy_epochs')),
        sa.UniqueConstraint('number', name=op.f('uq_economy_epochs_number')),
    )
    op.create_table(
        'economy_conversions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('epoch_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('tokens', sa.BigInteger(), nullable=False),
        sa.Column('staked', sa.BigInteger(), nullable=False),
        sa.Column('rate', sa.BigInteger(), nullable=False),
        sa.Column('requested', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['epoch_id'], ['economy_epochs.id'], name=op.f('fk_economy_conversions_epoch_id_economy_epochs'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_economy_conversions_user_id_users'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_economy_conversions')),
        sa.UniqueConstraint('epoch_id', 'user_id', name='uq_economy_conversions_epoch_user'),
    )
    op.create_index('ix_economy_conversions_user', 'economy_conversions', ['user_id', 'epoch_id'], unique=False)
    op.create_table(
        'economy_stakes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('staked_amount', sa.BigInteger(), nullable=False),
        sa.Column('lock_months', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('conversion_id', sa.BigInteger(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('staked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lock_ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('unstake_requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('release_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('staked', 'cooling', 'released')", name=op.f('ck_economy_stakes_status_known')),
        sa.CheckConstraint("source IN ('member', 'auto')", name=op.f('ck_economy_stakes_source_known')),
        sa.CheckConstraint('amount >= 0', name=op.f('ck_economy_stakes_amount_not_negative')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_economy_stakes_user_id_users'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_economy_stakes')),
        sa.UniqueConstraint('conversion_id', name='uq_economy_stakes_conversion_id'),
    )
    op.create_index('ix_economy_stakes_user_status', 'economy_stakes', ['user_id', 'status'], unique=False)
    op.create_table(
        'economy_slashes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('severity', sa.String(length=16), nullable=False),
        sa.Column('share_bp', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("severity IN ('warning', 'moderate', 'severe')", name=op.f('ck_economy_slashes_severity_known')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_economy_slashes_user_id_users'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_economy_slashes_actor_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_economy_slashes')),
    )
    op.create_index('ix_economy_slashes_user', 'economy_slashes', ['user_id', 'created_at'], unique=False)
    op.create_table(
        'economy_revenue_payments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('external_ref', sa.String(length=128), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('split', sa.JSON(), nullable=False),
        sa.Column('contributors', sa.BigInteger(), nullable=False),
        sa.Column('stakers', sa.BigInteger(), nullable=False),
        sa.Column('treasury', sa.BigInteger(), nullable=False),
        sa.Column('remainder', sa.BigInteger(), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount > 0', name=op.f('ck_economy_revenue_payments_amount_positive')),
        sa.CheckConstraint('contributors + stakers + treasury = amount', name=op.f('ck_economy_revenue_payments_parts_add_up')),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_economy_revenue_payments_campaign_id_campaigns'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_economy_revenue_payments_actor_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_economy_revenue_payments')),
        sa.UniqueConstraint('campaign_id', 'external_ref', name='uq_economy_revenue_payments_campaign_ref'),
    )
    op.create_table(
        'economy_statement_lines',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('contributor', 'holder', 'staker')", name=op.f('ck_economy_statement_lines_role_known')),
        sa.ForeignKeyConstraint(['payment_id'], ['economy_revenue_payments.id'], name=op.f('fk_economy_statement_lines_payment_id_economy_revenue_payments'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_economy_statement_lines_user_id_users'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_economy_statement_lines')),
        sa.UniqueConstraint('payment_id', 'user_id', 'role', name='uq_economy_statement_lines_payment_user_role'),
    )
    op.create_index('ix_economy_statement_lines_user', 'economy_statement_lines', ['user_id', 'created_at'], unique=False)
    op.add_column('submissions', sa.Column('stake_multiplier_bp', sa.Integer(), server_default='10000', nullable=False))


def downgrade():
    op.drop_column('submissions', 'stake_multiplier_bp')
    op.drop_index('ix_economy_statement_lines_user', table_name='economy_statement_lines')
    op.drop_table('economy_statement_lines')
    op.drop_table('economy_revenue_payments')
    op.drop_index('ix_economy_slashes_user', table_name='economy_slashes')
    op.drop_table('economy_slashes')
    op.drop_index('ix_economy_stakes_user_status', table_name='economy_stakes')
    op.drop_table('economy_stakes')
    op.drop_index('ix_economy_conversions_user', table_name='economy_conversions')
    op.drop_table('economy_conversions')
    op.drop_table('economy_epochs')
    op.drop_index('ix_economy_parameter_changes_name_at', table_name='economy_parameter_changes')
    op.drop_table('economy_parameter_changes')
    op.drop_table('economy_parameters')
