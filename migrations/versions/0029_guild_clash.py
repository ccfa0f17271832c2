"""guild clash: a match mode, the clashes between guilds and their members' places; arena play counted
in member progress (quests "play/win arena matches", the arena win badge)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 17:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

OBJECTIVES_BEFORE = "objective IN ('label_items', 'gold_accuracy', 'reviews', 'streak_days', 'join_guild')"
OBJECTIVES_AFTER = "objective IN ('label_items', 'gold_accuracy', 'reviews', 'streak_days', 'join_guild', 'arena_matches', 'arena_wins')"


def upgrade():
    with op.batch_alter_table('arena_matches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_arena_matches_mode_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_arena_matches_mode_known'), "mode IN ('error_hunt', 'accuracy_duel', 'guild_clash')")
    with op.batch_alter_table('quests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_quests_objective_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_quests_objective_known'), OBJECTIVES_AFTER)
    with op.batch_alter_table('member_progress', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arena_matches', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('arena_wins', sa.Integer(), server_default='0', nullable=False))

    op.create_table('arena_clashes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenger_guild_id', sa.Integer(), nullable=False),
    sa.Column('opponent_guild_id', sa.Integer(), nullable=False),
    sa.Column('challenged_by', sa.Integer(), nullable=True),
    sa.Column('accepted_by', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=True),
    sa.Column('challenger_points', sa.Integer(), nullable=False),
    sa.Column('opponent_points', sa.Integer(), nullable=False),
    sa.Column('winner_guild_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'declined', 'forming', 'playing', 'finished', 'called_off', 'expired')", name=op.f('ck_arena_clashes_status_known')),
    sa.CheckConstraint('challenger_guild_id <> opponent_guild_id', name=op.f('ck_arena_clashes_two_guilds')),
    sa.ForeignKeyConstraint(['accepted_by'], ['users.id'], name=op.f('fk_arena_clashes_accepted_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['challenged_by'], ['users.id'], name=op.f('fk_arena_clashes_challenged_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['challenger_guild_id'], ['guilds.id'], name=op.f('fk_arena_clashes_challenger_guild_id_guilds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['match_id'], ['arena_matches.id'], name=op.f('fk_arena_clashes_match_id_arena_matches'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opponent_guild_id'], ['guilds.id'], name=op.f('fk_arena_clashes_opponent_guild_id_guilds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['winner_guild_id'], ['guilds.id'], name=op.f('fk_arena_clashes_winner_guild_id_guilds'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_clashes')),
    sa.UniqueConstraint('match_id', name=op.f('uq_arena_clashes_match_id'))
    )
    with op.batch_alter_table('arena_clashes', schema=None) as batch_op:
        batch_op.create_index('ix_arena_clashes_challenger_status', ['challenger_guild_id', 'status'], unique=False)
        batch_op.create_index('ix_arena_clashes_opponent_status', ['opponent_guild_id', 'status'], unique=False)

    op.create_table('arena_clash_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clash_id', sa.Integer(), nullable=False),
    sa.Column('guild_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('slot >= 0 AND slot < 3', name=op.f('ck_arena_clash_slots_slot_in_team')),
    sa.ForeignKeyConstraint(['clash_id'], ['arena_clashes.id'], name=op.f('fk_arena_clash_slots_clash_id_arena_clashes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], name=op.f('fk_arena_clash_slots_guild_id_guilds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_arena_clash_slots_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arena_clash_slots')),
    sa.UniqueConstraint('clash_id', 'guild_id', 'slot', name='uq_arena_clash_slots_clash_side_slot'),
    sa.UniqueConstraint('clash_id', 'user_id', name='uq_arena_clash_slots_clash_user')
    )


def downgrade():
    op.drop_table('arena_clash_slots')
    with op.batch_alter_table('arena_clashes', schema=None) as batch_op:
        batch_op.drop_index('ix_arena_clashes_opponent_status')
        batch_op.drop_index('ix_arena_clashes_challenger_status')
    op.drop_table('arena_clashes')
    with op.batch_alter_table('member_progress', schema=None) as batch_op:
        batch_op.drop_column('arena_wins')
        batch_op.drop_column('arena_matches')
    op.execute("DELETE FROM quests WHERE objective IN ('arena_matches', 'arena_wins')")
    with op.batch_alter_table('quests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_quests_objective_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_quests_objective_known'), OBJECTIVES_BEFORE)
    op.execute("DELETE FROM arena_matches WHERE mode = 'guild_clash'")
    with op.batch_alter_table('arena_matches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_arena_matches_mode_known'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_arena_matches_mode_known'), "mode IN ('error_hunt', 'accuracy_duel')")
