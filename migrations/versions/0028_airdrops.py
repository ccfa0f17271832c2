"""airdrops: snapshots (config, run state, hashes, freezing, publishing), per-member entries, appeals
against exclusions, recognized guilds

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'airdrop_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('config', sa.JSON(), nullable=False),
        sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
        sa.Column('total_amount', sa.String(length=80), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('progress_done', sa.Integer(), nullable=False),
        sa.Column('progress_total', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('eligible_count', sa.Integer(), nullable=False),
        sa.Column('excluded_count', sa.Integer(), nullable=False),
        sa.Column('allocated_amount', sa.String(length=80), nullable=False),
        sa.Column('input_hash', sa.String(length=66), nullable=True),
        sa.Column('result_hash', sa.String(length=66), nullable=True),
        sa.Column('merkle_root', sa.String(length=66), nullable=True),
        sa.Column('tree_dump', sa.Text(), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('proposed_by', sa.Integer(), nullable=True),
        sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('frozen_by', sa.Integer(), nullable=True),
        sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('chain_id', sa.BigInteger(), nullable=True),
        sa.Column('claim_deadline', sa.DateTime(timezone=True), nullable=True),
        sa.Column('publish_requested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('distributor_address', sa.String(length=42), nullable=True),
        sa.Column('funded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('publish_error', sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_airdrop_snapshots_status_known')),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_airdrop_snapshots_created_by_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['proposed_by'], ['users.id'], name=op.f('fk_airdrop_snapshots_proposed_by_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['frozen_by'], ['users.id'], name=op.f('fk_airdrop_snapshots_frozen_by_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_airdrop_snapshots')),
    )
    op.create_table(
        'airdrop_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('snapshot_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=42), nullable=True),
        sa.Column('values', sa.JSON(), nullable=False),
        sa.Column('score', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.String(length=80), nullable=False),
        sa.Column('excluded_rule', sa.String(length=48), nullable=True),
        sa.Column('excluded_reason', sa.Text(), nullable=True),
        sa.Column('tree_index', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['snapshot_id'], ['airdrop_snapshots.id'], name=op.f('fk_airdrop_entries_snapshot_id_airdrop_snapshots'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_airdrop_entries_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_airdrop_entries')),
        sa.UniqueConstraint('snapshot_id', 'user_id', name=op.f('uq_airdrop_entries_snapshot_id')),
    )
    op.create_index(op.f('ix_airdrop_entries_snapshot_id'), 'airdrop_entries', ['snapshot_id'], unique=False)
    op.create_index(op.f('ix_airdrop_entries_user_id'), 'airdrop_entries', ['user_id'], unique=False)
    op.create_table(
        'airdrop_appeals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('snapshot_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('rule', sa.String(length=48), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'upheld', 'overturned')", name=op.f('ck_airdrop_appeals_status_known')),
        sa.ForeignKeyConstraint(['snapshot_id'], ['airdrop_snapshots.id'], name=op.f('fk_airdrop_appeals_snapshot_id_airdrop_snapshots'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_airdrop_appeals_user_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_airdrop_appeals_decided_by_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_airdrop_appeals')),
        sa.UniqueConstraint('snapshot_id', 'user_id', name=op.f('uq_airdrop_appeals_snapshot_id')),
    )
    op.create_index(op.f('ix_airdrop_appeals_snapshot_id'), 'airdrop_appeals', ['snapshot_id'], unique=False)
    op.create_table(
        'airdrop_recognized_guilds',
        sa.Column('guild_id', sa.Integer(), nullable=False),
        sa.Column('recognized_by', sa.Integer(), nullable=True),
        sa.Column('recognized_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], name=op.f('fk_airdrop_recognized_guilds_guild_id_guilds'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['recognized_by'], ['users.id'], name=op.f('fk_airdrop_recognized_guilds_recognized_by_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('guild_id', name=op.f('pk_airdrop_recognized_guilds')),
    )


def downgrade():
    op.drop_table('airdrop_recognized_guilds')
    op.drop_index(op.f('ix_airdrop_appeals_snapshot_id'), table_name='airdrop_appeals')
    op.drop_table('airdrop_appeals')
    op.drop_index(op.f('ix_airdrop_entries_user_id'), table_name='airdrop_entries')
    op.drop_index(op.f('ix_airdrop_entries_snapshot_id'), table_name='airdrop_entries')
    op.drop_table('airdrop_entries')
    op.drop_table('airdrop_snapshots')
