"""arena: seasons, openskill ratings per mode, matches with their seats and answers, items seen, the prize
pool, challenges, stump-the-model items

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 14:32:09.749122

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('arena_seasons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_seasons')),
    sa.UniqueConstraint('number', name=op.f('uq_arena_seasons_number'))
    )
    op.create_table('arena_prize_pool',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('budget_tokens', sa.Numeric(precision=38, scale=0), nullable=False),
    sa.Column('paid_tokens', sa.Numeric(precision=38, scale=0), nullable=False),
    sa.Column('prize_tokens', sa.BigInteger(), nullable=False),
    sa.Column('entry_fee_points', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('paid_tokens <= budget_tokens', name=op.f('ck_arena_prize_pool_within_budget')),
    sa.CheckConstraint('paid_tokens >= 0 AND prize_tokens >= 0 AND entry_fee_points >= 0', name=op.f('ck_arena_prize_pool_not_negative')),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_arena_prize_pool_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_prize_pool'))
    )
    op.create_table('arena_ratings',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=24), nullable=False),
    sa.Column('season_id', sa.Integer(), nullable=False),
    sa.Column('mu', sa.Float(), nullable=False),
    sa.Column('sigma', sa.Float(), nullable=False),
    sa.Column('ordinal', sa.Float(), nullable=False),
    sa.Column('matches', sa.Integer(), nullable=False),
    sa.Column('wins', sa.Integer(), nullable=False),
    sa.Column('best_tier', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['season_id'], ['arena_seasons.id'], name=op.f('fk_arena_ratings_season_id_arena_seasons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_arena_ratings_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'mode', 'season_id', name=op.f('pk_arena_ratings'))
    )
    with op.batch_alter_table('arena_ratings', schema=None) as batch_op:
        batch_op.create_index('ix_arena_ratings_board', ['season_id', 'mode', sa.text('ordinal DESC')], unique=False)

    op.create_table('arena_matches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=24), nullable=False),
    sa.Column('season_id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('shown', sa.JSON(), nullable=False),
    sa.Column('planted', sa.JSON(), nullable=False),
    sa.Column('truth', sa.JSON(), nullable=False),
    sa.Column('ghost_of_match_id', sa.Integer(), nullable=True),
    sa.Column('entry_fee', sa.Integer(), nullable=False),
    sa.Column('rated', sa.Boolean(), nullable=False),
    sa.Column('flag_state', sa.String(length=16), nullable=False),
    sa.Column('flag_reasons', sa.JSON(), nullable=False),
    sa.Column('flag_decided_by', sa.Integer(), nullable=True),
    sa.Column('winner_id', sa.Integer(), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("flag_state IN ('none', 'open', 'cleared', 'upheld')", name=op.f('ck_arena_matches_flag_state_known')),
    sa.CheckConstraint("mode IN ('error_hunt', 'accuracy_duel')", name=op.f('ck_arena_matches_mode_known')),
    sa.CheckConstraint("status IN ('active', 'finished', 'void')", name=op.f('ck_arena_matches_status_known')),
    sa.CheckConstraint('entry_fee >= 0', name=op.f('ck_arena_matches_entry_fee_not_negative')),
    sa.ForeignKeyConstraint(['flag_decided_by'], ['users.id'], name=op.f('fk_arena_matches_flag_decided_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ghost_of_match_id'], ['arena_matches.id'], name=op.f('fk_arena_matches_ghost_of_match_id_arena_matches'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pack_id'], ['task_packs.id'], name=op.f('fk_arena_matches_pack_id_task_packs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['season_id'], ['arena_seasons.id'], name=op.f('fk_arena_matches_season_id_arena_seasons'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['winner_id'], ['users.id'], name=op.f('fk_arena_matches_winner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_matches'))
    )
    with op.batch_alter_table('arena_matches', schema=None) as batch_op:
        batch_op.create_index('ix_arena_matches_flag_state', ['flag_state'], unique=False)
        batch_op.create_index('ix_arena_matches_status_deadline', ['status', 'deadline'], unique=False)

    op.create_table('arena_challenges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenger_id', sa.Integer(), nullable=False),
    sa.Column('opponent_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('open', 'accepted', 'declined', 'expired')", name=op.f('ck_arena_challenges_status_known')),
    sa.ForeignKeyConstraint(['challenger_id'], ['users.id'], name=op.f('fk_arena_challenges_challenger_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['match_id'], ['arena_matches.id'], name=op.f('fk_arena_challenges_match_id_arena_matches'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opponent_id'], ['users.id'], name=op.f('fk_arena_challenges_opponent_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_challenges'))
    )
    with op.batch_alter_table('arena_challenges', schema=None) as batch_op:
        batch_op.create_index('ix_arena_challenges_opponent_status', ['opponent_id', 'status'], unique=False)

    op.create_table('arena_players',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('seat', sa.Integer(), nullable=False),
    sa.Column('is_ghost', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('forfeited', sa.Boolean(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('found', sa.Integer(), nullable=False),
    sa.Column('false_alarms', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('time_ms', sa.Integer(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rating_before', sa.Integer(), nullable=True),
    sa.Column('rating_after', sa.Integer(), nullable=True),
    sa.Column('prize_tokens', sa.BigInteger(), nullable=False),
    sa.Column('prize_points', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('active', 'done')", name=op.f('ck_arena_players_status_known')),
    sa.ForeignKeyConstraint(['match_id'], ['arena_matches.id'], name=op.f('fk_arena_players_match_id_arena_matches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_arena_players_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_players')),
    sa.UniqueConstraint('match_id', 'user_id', name=op.f('uq_arena_players_match_id'))
    )
    with op.batch_alter_table('arena_players', schema=None) as batch_op:
        batch_op.create_index('ix_arena_players_one_active', ['user_id'], unique=True, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
        batch_op.create_index('ix_arena_players_user_match', ['user_id', 'match_id'], unique=False)

    op.create_table('arena_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('offset_ms', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_arena_answers_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['match_id'], ['arena_matches.id'], name=op.f('fk_arena_answers_match_id_arena_matches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_arena_answers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_answers')),
    sa.UniqueConstraint('match_id', 'user_id', 'item_id', name=op.f('uq_arena_answers_match_id'))
    )
    op.create_table('arena_seen',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_arena_seen_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['match_id'], ['arena_matches.id'], name=op.f('fk_arena_seen_match_id_arena_matches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_arena_seen_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'item_id', name=op.f('pk_arena_seen'))
    )


    op.create_table('arena_stumps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pack_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('model_label', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('votes', sa.JSON(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'rejected')", name=op.f('ck_arena_stumps_status_known')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_arena_stumps_author_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_arena_stumps_item_id_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pack_id'], ['task_packs.id'], name=op.f('fk_arena_stumps_pack_id_task_packs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_stumps'))
    )
    with op.batch_alter_table('arena_stumps', schema=None) as batch_op:
        batch_op.create_index('ix_arena_stumps_status_pack', ['status', 'pack_id'], unique=False)


def downgrade():
    with op.batch_alter_table('arena_stumps', schema=None) as batch_op:
        batch_op.drop_index('ix_arena_stumps_status_pack')

    op.drop_table('arena_stumps')
    op.drop_table('arena_seen')
    op.drop_table('arena_answers')
    with op.batch_alter_table('arena_players', schema=None) as batch_op:
        batch_op.drop_index('ix_arena_players_user_match')
        batch_op.drop_index('ix_arena_players_one_active', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))

    op.drop_table('arena_players')
    with op.batch_alter_table('arena_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_arena_challenges_opponent_status')

    op.drop_table('arena_challenges')
    with op.batch_alter_table('arena_matches', schema=None) as batch_op:
        batch_op.drop_index('ix_arena_matches_status_deadline')
        batch_op.drop_index('ix_arena_matches_flag_state')

    op.drop_table('arena_matches')
    with op.batch_alter_table('arena_ratings', schema=None) as batch_op:
        batch_op.drop_index('ix_arena_ratings_board')

    op.drop_table('arena_ratings')
    op.drop_table('arena_prize_pool')
    op.drop_table('arena_seasons')
