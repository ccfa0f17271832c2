"""wallets and siwe_nonces: members link a wallet by Sign-In with Ethereum (one wallet per member, one
member per wallet), with server-side single-use nonces

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 12:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'wallets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('payout_chain_id', sa.Integer(), nullable=True),
        sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_wallets_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_wallets')),
        sa.UniqueConstraint('address', name=op.f('uq_wallets_address')),
        sa.UniqueConstraint('user_id', name=op.f('uq_wallets_user_id')),
    )
    op.create_table(
        'siwe_nonces',
        sa.Column('nonce', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('chain_id', sa.Integer(), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_siwe_nonces_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('nonce', name=op.f('pk_siwe_nonces')),
    )
    with op.batch_alter_table('siwe_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_siwe_nonces_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('siwe_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_siwe_nonces_user_id'))
    op.drop_table('siwe_nonces')
    op.drop_table('wallets')
