"""submissions: rewards settle on verification. An answer's reward is pending until it is verified, then
paid by a settlement batch (`reward_state`, `verified_at`, `paid_at`). Backfill: every answer accepted so far
was paid when it was given; an answer waiting for review is pending; a rejected one earned nothing unless it
was paid and then reversed.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

STATES = "('pending', 'verified', 'paid', 'not_verified', 'void')"


def upgrade():
    with op.batch_alter_table('submissions') as batch:
        batch.add_column(sa.Column('reward_state', sa.String(length=16), nullable=False, server_default='pending'))
        batch.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE submissions SET reward_state = 'paid', verified_at = COALESCE(decided_at, created_at),"
        " paid_at = COALESCE(decided_at, created_at) WHERE status = 'accepted' OR reversed_at IS NOT NULL"
    )
    op.execute("UPDATE submissions SET reward_state = 'void' WHERE status = 'rejected' AND reversed_at IS NULL")
    with op.batch_alter_table('submissions') as batch:
        batch.create_check_constraint(op.f('ck_submissions_reward_state_known'), f"reward_state IN {STATES}")
        batch.alter_column('reward_state', server_default=None)
    op.create_index('ix_submissions_verified_unpaid', 'submissions', ['id'], unique=False,
                    postgresql_where=sa.text("reward_state = 'verified'"), sqlite_where=sa.text("reward_state = 'verified'"))
    op.create_index('ix_submissions_user_reward_open', 'submissions', ['user_id'], unique=False,
                    postgresql_where=sa.text("reward_state IN ('pending', 'verified')"),
                    sqlite_where=sa.text("reward_state IN ('pending', 'verified')"))


def downgrade():
    op.drop_index('ix_submissions_user_reward_open', table_name='submissions')
    op.drop_index('ix_submissions_verified_unpaid', table_name='submissions')
    with op.batch_alter_table('submissions') as batch:
        batch.drop_constraint(op.f('ck_submissions_reward_state_known'), type_='check')
        batch.drop_column('paid_at')
        batch.drop_column('verified_at')
        batch.drop_column('reward_state')
