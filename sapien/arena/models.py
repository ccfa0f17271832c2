"""Arena tables: seasons, ratings, matches, their players and answers, items seen, the prize pool, challenges.

The database holds the truth the Redis queue only speeds up: a member has at most one active seat
(`ix_arena_players_one_active`), a member never sees the same arena item twice in rated play
(`arena_seen` keyed by member and item), and a match is scored once (`status` moves from "active" to
"finished" in one conditional UPDATE).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

MODES = ("error_hunt", "accuracy_duel")
# Guild clash: three members of one guild against three of another, on one error hunt (`clash`). Not a
# mode of the matchmaking queue, so it is not in MODES; a match row may carry it.
CLASH_MODE = "guild_clash"
MATCH_MODES = (*MODES, CLASH_MODE)
MATCH_STATES = ("active", "finished", "void")
SEAT_STATES = ("active", "done")
# A fair-play flag: none, open (waiting for a moderator; the match stays unrated and unpaid), cleared
# (rated and paid then), upheld (never rated, never paid).
FLAG_STATES = ("none", "open", "cleared", "upheld")
CHALLENGE_STATES = ("open", "accepted", "declined", "expired")


class ArenaSeason(db.Model):
    __tablename__ = "arena_seasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ArenaRating(db.Model):
    """A member's openskill rating in one mode and season (mu, sigma); `ordinal` = mu − 3σ, kept for sorting."""

    __tablename__ = "arena_ratings"
    __table_args__ = (Index("ix_arena_ratings_board", "season_id", "mode", text("ordinal DESC")),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(24), primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("arena_seasons.id", ondelete="CASCADE"), primary_key=True)
    mu: Mapped[float] = mapped_column(Float)
    sigma: Mapped[float] = mapped_column(Float)
    ordinal: Mapped[float] = mapped_column(Float)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    best_tier: Mapped[str] = mapped_column(String(16), default="bronze")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ArenaMatch(db.Model):
    __tablename__ = "arena_matches"
    __table_args__ = (
        CheckConstraint(f"mode IN ({', '.join(repr(mode) for mode in MATCH_MODES)})", name="mode_known"),
        CheckConstraint(f"status IN {MATCH_STATES!r}", name="status_known"),
        CheckConstraint(f"flag_state IN {FLAG_STATES!r}", name="flag_state_known"),
        CheckConstraint("entry_fee >= 0", name="entry_fee_not_negative"),
        Index("ix_arena_matches_flag_state", "flag_state"),
        Index("ix_arena_matches_status_deadline", "status", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(24))
    season_id: Mapped[int] = mapped_column(ForeignKey("arena_seasons.id", ondelete="RESTRICT"))
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # The items in the order shown, the label shown with each ({item id: label}) and the planted errors
    # ({item id: the wrong label shown}); the truth is each item's verified label, copied into `truth`.
    item_ids: Mapped[list] = mapped_column(JSON, default=list)
    shown: Mapped[dict] = mapped_column(JSON, default=dict)
    planted: Mapped[dict] = mapped_column(JSON, default=dict)
    truth: Mapped[dict] = mapped_column(JSON, default=dict)
    # An asynchronous duel against the recorded run of another member's match.
    ghost_of_match_id: Mapped[int | None] = mapped_column(ForeignKey("arena_matches.id", ondelete="SET NULL"))
    entry_fee: Mapped[int] = mapped_column(Integer, default=0)
    rated: Mapped[bool] = mapped_column(Boolean, default=True)
    flag_state: Mapped[str] = mapped_column(String(16), default="none")
    flag_reasons: Mapped[list] = mapped_column(JSON, default=list)
    flag_decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    winner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Set once ratings and prizes were applied (at the finish, or when a moderator clears its flag).
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ArenaPlayer(db.Model):
    """A seat in a match. A ghost seat replays another match's recorded answers and is never rated."""

    __tablename__ = "arena_players"
    __table_args__ = (
        UniqueConstraint("match_id", "user_id"),
        CheckConstraint(f"status IN {SEAT_STATES!r}", name="status_known"),
        # One active match per member, whatever races.
        Index("ix_arena_players_one_active", "user_id", unique=True,
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
        Index("ix_arena_players_user_match", "user_id", "match_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("arena_matches.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seat: Mapped[int] = mapped_column(Integer)
    is_ghost: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    forfeited: Mapped[bool] = mapped_column(Boolean, default=False)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    found: Mapped[int] = mapped_column(Integer, default=0)
    false_alarms: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int] = mapped_column(Integer, default=0)
    time_ms: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rating_before: Mapped[int | None] = mapped_column(Integer)
    rating_after: Mapped[int | None] = mapped_column(Integer)
    prize_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    prize_points: Mapped[int] = mapped_column(Integer, default=0)


class ArenaAnswer(db.Model):
    """One verdict on one item: the label looks right (`flagged` false), or it is wrong and should be `label`."""

    __tablename__ = "arena_answers"
    __table_args__ = (UniqueConstraint("match_id", "user_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("arena_matches.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    flagged: Mapped[bool] = mapped_column(Boolean)
    label: Mapped[str] = mapped_column(String(120), default="")
    # Milliseconds from the match's start: a ghost replays them.
    offset_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ArenaSeen(db.Model):
    """An item a member was shown in a rated match: never shown to them again."""

    __tablename__ = "arena_seen"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("arena_matches.id", ondelete="CASCADE"))


class ArenaPrizePool(db.Model):
    """The one prize pool admins fund (row id 1): tokens paid never pass the budget (a guarded UPDATE)."""

    __tablename__ = "arena_prize_pool"
    __table_args__ = (
        CheckConstraint("paid_tokens <= budget_tokens", name="within_budget"),
        CheckConstraint("paid_tokens >= 0 AND prize_tokens >= 0 AND entry_fee_points >= 0", name="not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Base units, NUMERIC(38, 0): a pool's budget has room beyond any one ledger balance.
    budget_tokens: Mapped[int] = mapped_column(Numeric(38, 0), default=0)
    paid_tokens: Mapped[int] = mapped_column(Numeric(38, 0), default=0)
    prize_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_fee_points: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ArenaChallenge(db.Model):
    __tablename__ = "arena_challenges"
    __table_args__ = (
        CheckConstraint(f"status IN {CHALLENGE_STATES!r}", name="status_known"),
        Index("ix_arena_challenges_opponent_status", "opponent_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenger_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    opponent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(24), default="error_hunt")
    status: Mapped[str] = mapped_column(String(16), default="open")
    match_id: Mapped[int | None] = mapped_column(ForeignKey("arena_matches.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# open: one guild challenged another; forming: accepted, members take the sides' places; playing: the
# match runs; finished: scored (`winner_guild_id`, None for a draw); declined: the other guild said no.
CLASH_STATES = ("open", "declined", "forming", "playing", "finished", "called_off", "expired")
CLASH_TEAM_SIZE = 3


class ArenaClash(db.Model):
    """A guild clash: one guild's manager challenged another guild; once accepted, three members a side."""

    __tablename__ = "arena_clashes"
    __table_args__ = (
        CheckConstraint(f"status IN {CLASH_STATES!r}", name="status_known"),
        CheckConstraint("challenger_guild_id <> opponent_guild_id", name="two_guilds"),
        Index("ix_arena_clashes_challenger_status", "challenger_guild_id", "status"),
        Index("ix_arena_clashes_opponent_status", "opponent_guild_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenger_guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    opponent_guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    challenged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accepted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    match_id: Mapped[int | None] = mapped_column(ForeignKey("arena_matches.id", ondelete="SET NULL"), unique=True)
    # The sum of each side's three scores, and the guild that won (None before the end, or for a draw).
    challenger_points: Mapped[int] = mapped_column(Integer, default=0)
    opponent_points: Mapped[int] = mapped_column(Integer, default=0)
    winner_guild_id: Mapped[int | None] = mapped_column(ForeignKey("guilds.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ArenaClashSlot(db.Model):
    """A member's place on their guild's side: three places a side (a slot number 0–2, unique per side), one
    place per member and clash, so a fourth member or a member on both sides is refused by the database too."""

    __tablename__ = "arena_clash_slots"
    __table_args__ = (
        UniqueConstraint("clash_id", "user_id", name="uq_arena_clash_slots_clash_user"),
        UniqueConstraint("clash_id", "guild_id", "slot", name="uq_arena_clash_slots_clash_side_slot"),
        CheckConstraint(f"slot >= 0 AND slot < {CLASH_TEAM_SIZE}", name="slot_in_team"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clash_id: Mapped[int] = mapped_column(ForeignKey("arena_clashes.id", ondelete="CASCADE"))
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(Integer)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


STUMP_STATES = ("pending", "confirmed", "rejected")


class ArenaStump(db.Model):
    """Stump the model: a text item a member wrote that the pack's baseline classifier gets wrong. Other members
    confirm its true label; once confirmed it becomes a gold item of the pack (`item_id`)."""

    __tablename__ = "arena_stumps"
    __table_args__ = (
        CheckConstraint(f"status IN {STUMP_STATES!r}", name="status_known"),
        Index("ix_arena_stumps_status_pack", "status", "pack_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(120))
    model_label: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # {"<user id>": "<label>"}: the other members' confirmations.
    votes: Mapped[dict] = mapped_column(JSON, default=dict)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
