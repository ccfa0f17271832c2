"""chain: token withdrawals and the payout batches that settle them on chain

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 14:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'payout_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=16), nullable=False),
        sa.Column('token_address', sa.String(length=42), nullable=False),
        sa.Column('onchain_id', sa.String(length=66), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.Column('total', sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('tx_id', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=2000), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'sent', 'confirmed', 'failed')", name=op.f('ck_payout_batches_status_known')),
        sa.ForeignKeyConstraint(['tx_id'], ['chain_transactions.id'], name=op.f('fk_payout_batches_tx_id_chain_transactions'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batches')),
        sa.UniqueConstraint('onchain_id', name=op.f('uq_payout_batches_onchain_id')),
        sa.UniqueConstraint('tx_id', name=op.f('uq_payout_batches_tx_id')),
    )
    op.create_index('ix_payout_batches_status_id', 'payout_batches', ['status', 'id'])
    op.create_table(
        'withdrawals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=16), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.Column('debit_entry_id', sa.BigInteger(), nullable=False),
        sa.Column('refund_entry_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'batched', 'sent', 'confirmed', 'refunded')", name=op.f('ck_withdrawals_status_known')),
        sa.CheckConstraint("currency IN ('token', 'partner')", name=op.f('ck_withdrawals_currency_known')),
        sa.CheckConstraint('amount > 0', name=op.f('ck_withdrawals_amount_positive')),
        sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_withdrawals_batch_id_payout_batches'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_withdrawals_user_id_users'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_withdrawals')),
        sa.UniqueConstraint('key', name=op.f('uq_withdrawals_key')),
    )
    op.create_index('ix_withdrawals_status_id', 'withdrawals', ['status', 'id'])
    op.create_index('ix_withdrawals_user_id_id', 'withdrawals', ['user_id', 'id'])
    op.create_index('ix_withdrawals_batch_id', 'withdrawals', ['batch_id'])


def downgrade():
    op.drop_index('ix_withdrawals_batch_id', table_name='withdrawals')
    op.drop_index('ix_withdrawals_user_id_id', table_name='withdrawals')
    op.drop_index('ix_withdrawals_status_id', table_name='withdrawals')
    op.drop_table('withdrawals')
    op.drop_index('ix_payout_batches_status_id', table_name='payout_batches')
    op.drop_table('payout_batches')
