"""moderation: trust signals, flags, decisions (restrictions and bans), appeals

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 14:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'trust_signals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('ip_hash', sa.String(length=64), nullable=False),
        sa.Column('network', sa.String(length=64), nullable=False),
        sa.Column('device_id', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('sign_up', 'login')", name=op.f('ck_trust_signals_kind_known')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_trust_signals_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_trust_signals')),
    )
    op.create_index('ix_trust_signals_user', 'trust_signals', ['user_id'])
    op.create_index('ix_trust_signals_network', 'trust_signals', ['network'])
    op.create_index('ix_trust_signals_device', 'trust_signals', ['device_id'])
    op.create_index('ix_trust_signals_created_at', 'trust_signals', ['created_at'])
    op.create_table(
        'moderation_decisions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('moderator_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=True),
        sa.Column('pack_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reversal', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('dismiss', 'warn', 'restrict', 'ban')", name=op.f('ck_moderation_decisions_action_known')),
        sa.CheckConstraint(
            "scope IS NULL OR scope IN ('labeling', 'pack', 'review', 'arena', 'airdrops', 'all')",
            name=op.f('ck_moderation_decisions_scope_known'),
        ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_moderation_decisions_user_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['moderator_id'], ['users.id'], name=op.f('fk_moderation_decisions_moderator_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['pack_id'], ['task_packs.id'], name=op.f('fk_moderation_decisions_pack_id_task_packs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_decisions')),
    )
    op.create_index('ix_moderation_decisions_user', 'moderation_decisions', ['user_id', 'action'])
    op.create_table(
        'moderation_flags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('decision_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'dismissed', 'actioned')", name=op.f('ck_moderation_flags_status_known')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_moderation_flags_user_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['decision_id'], ['moderation_decisions.id'], name=op.f('fk_moderation_flags_decision_id_moderation_decisions'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_flags')),
    )
    op.create_index('uq_moderation_flags_open', 'moderation_flags', ['user_id', 'kind'], unique=True,
                    postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
    op.create_index('ix_moderation_flags_status_score', 'moderation_flags', ['status', 'score'])
    op.create_table(
        'moderation_appeals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('decision_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'upheld', 'overturned')", name=op.f('ck_moderation_appeals_status_known')),
        sa.ForeignKeyConstraint(['decision_id'], ['moderation_decisions.id'], name=op.f('fk_moderation_appeals_decision_id_moderation_decisions'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_moderation_appeals_user_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_moderation_appeals_decided_by_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_appeals')),
        sa.UniqueConstraint('decision_id', name=op.f('uq_moderation_appeals_decision_id')),
    )
    op.create_index(op.f('ix_moderation_appeals_user_id'), 'moderation_appeals', ['user_id'])


def downgrade():
    op.drop_table('moderation_appeals')
    op.drop_table('moderation_flags')
    op.drop_table('moderation_decisions')
    op.drop_table('trust_signals')
