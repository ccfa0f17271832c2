"""governance: proposals, voting power frozen per proposal, votes (one per member)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 14:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'governance_proposals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(length=120), nullable=False),
        sa.Column('rationale', sa.Text(), nullable=False),
        sa.Column('parameter_name', sa.String(length=64), nullable=True),
        sa.Column('old_value', sa.JSON(), nullable=True),
        sa.Column('new_value', sa.JSON(), nullable=True),
        sa.Column('task_type_name', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('quorum_bp', sa.Integer(), nullable=False),
        sa.Column('threshold_bp', sa.Integer(), nullable=False),
        sa.Column('timelock_seconds', sa.Integer(), nullable=False),
        sa.Column('total_power', sa.BigInteger(), nullable=False),
        sa.Column('eligible_voters', sa.Integer(), nullable=False),
        sa.Column('power_for', sa.BigInteger(), nullable=False),
        sa.Column('power_against', sa.BigInteger(), nullable=False),
        sa.Column('power_abstain', sa.BigInteger(), nullable=False),
        sa.Column('voters', sa.Integer(), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('executable_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('executed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('parameter_change_id', sa.Integer(), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('outcome_note', sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('parameter', 'task_type')", name=op.f('ck_governance_proposals_kind_known')),
        sa.CheckConstraint("status IN ('voting', 'passed', 'failed', 'queued', 'executed', 'cancelled')",
                           name=op.f('ck_governance_proposals_status_known')),
        sa.CheckConstraint('quorum_bp BETWEEN 0 AND 10000 AND threshold_bp BETWEEN 0 AND 10000',
                           name=op.f('ck_governance_proposals_rules_in_range')),
        sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_governance_proposals_author_id_users'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_proposals')),
    )
    op.create_index('ix_governance_proposals_status_closes', 'governance_proposals', ['status', 'closes_at'], unique=False)
    op.create_table(
        'governance_power_snapshots',
        sa.Column('proposal_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('stake', sa.BigInteger(), nullable=False),
        sa.Column('reputation', sa.Integer(), nullable=False),
        sa.Column('power', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('power > 0', name=op.f('ck_governance_power_snapshots_power_positive')),
        sa.ForeignKeyConstraint(['proposal_id'], ['governance_proposals.id'],
                                name=op.f('fk_governance_power_snapshots_proposal_id_governance_proposals'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_governance_power_snapshots_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('proposal_id', 'user_id', name=op.f('pk_governance_power_snapshots')),
    )
    op.create_table(
        'governance_votes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('proposal_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('choice', sa.String(length=8), nullable=False),
        sa.Column('power', sa.BigInteger(), nullable=False),
        sa.Column('cast_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("choice IN ('for', 'against', 'abstain')", name=op.f('ck_governance_votes_choice_known')),
        sa.ForeignKeyConstraint(['proposal_id'], ['governance_proposals.id'],
                                name=op.f('fk_governance_votes_proposal_id_governance_proposals'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_governance_votes_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_votes')),
        sa.UniqueConstraint('proposal_id', 'user_id', name='uq_governance_votes_proposal_user'),
    )
    op.create_index('ix_governance_votes_proposal_choice', 'governance_votes', ['proposal_id', 'choice'], unique=False)


def downgrade():
    op.drop_index('ix_governance_votes_proposal_choice', table_name='governance_votes')
    op.drop_table('governance_votes')
    op.drop_table('governance_power_snapshots')
    op.drop_index('ix_governance_proposals_status_closes', table_name='governance_proposals')
    op.drop_table('governance_proposals')
