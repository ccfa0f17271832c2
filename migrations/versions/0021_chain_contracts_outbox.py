"""chain: contract addresses per chain, signer nonces, the transaction outbox; mint requests point at
their outbox transaction and token

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 12:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'chain_contracts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('tx_hash', sa.String(length=66), nullable=True),
        sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_contracts')),
        sa.UniqueConstraint('chain_id', 'name', name=op.f('uq_chain_contracts_chain_id')),
    )
    op.create_table(
        'chain_signer_nonces',
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('next_nonce', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('chain_id', 'address', name=op.f('pk_chain_signer_nonces')),
    )
    op.create_table(
        'chain_transactions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('signer', sa.String(length=42), nullable=True),
        sa.Column('nonce', sa.BigInteger(), nullable=True),
        sa.Column('raw_tx', sa.Text(), nullable=True),
        sa.Column('tx_hash', sa.String(length=66), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('block_number', sa.BigInteger(), nullable=True),
        sa.Column('contract_address', sa.String(length=42), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'signed', 'sent', 'confirmed', 'failed')", name=op.f('ck_chain_transactions_status_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_transactions')),
        sa.UniqueConstraint('key', name=op.f('uq_chain_transactions_key')),
        sa.UniqueConstraint('chain_id', 'signer', 'nonce', name=op.f('uq_chain_transactions_signer_nonce')),
    )
    op.create_index('ix_chain_transactions_unfinished', 'chain_transactions', ['status', 'id'])
    op.create_index('ix_chain_transactions_tx_hash', 'chain_transactions', ['tx_hash'])
    with op.batch_alter_table('mint_requests') as batch:
        batch.add_column(sa.Column('tx_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('token_id', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('wallet_address', sa.String(length=42), nullable=True))
        batch.add_column(sa.Column('chain_id', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch.create_foreign_key(op.f('fk_mint_requests_tx_id_chain_transactions'), 'chain_transactions', ['tx_id'], ['id'], ondelete='SET NULL')
        batch.create_index('ix_mint_requests_token_id', ['token_id'])


def downgrade():
    with op.batch_alter_table('mint_requests') as batch:
        batch.drop_index('ix_mint_requests_token_id')
        batch.drop_constraint(op.f('fk_mint_requests_tx_id_chain_transactions'), type_='foreignkey')
        for column in ('last_error', 'chain_id', 'wallet_address', 'token_id', 'tx_id'):
            batch.drop_column(column)
    op.drop_index('ix_chain_transactions_tx_hash', table_name='chain_transactions')
    op.drop_index('ix_chain_transactions_unfinished', table_name='chain_transactions')
    op.drop_table('chain_transactions')
    op.drop_table('chain_signer_nonces')
    op.drop_table('chain_contracts')
