"""Progression tables: per-member counters and streak, level-ups, quests and progress, badges, mints.

XP itself is never stored here: it lives in the ledger. These rows record what the ledger and the
other areas' events *mean* for the game (a level reached, a day active, a quest done, a badge held).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

QUEST_PERIODS = ("daily", "weekly", "once")
QUEST_OBJECTIVES = ("label_items", "gold_accuracy", "reviews", "streak_days", "join_guild", "arena_matches", "arena_wins")
# "member": every member progresses on their own; "guild": a guild's members progress together.
QUEST_SCOPES = ("member", "guild")
BADGE_TIERS = ("bronze", "silver", "gold")
MINT_STATES = ("pending", "submitted", "minted", "failed", "cancelled")


class MemberProgress(db.Model):
    """One row per member: counters fed by events, the streak, and the last level recorded."""

    __tablename__ = "member_progress"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    labels_accepted: Mapped[int] = mapped_column(Integer, default=0)
    gold_answered: Mapped[int] = mapped_column(Integer, default=0)
    gold_correct: Mapped[int] = mapped_column(Integer, default=0)
    reviews_completed: Mapped[int] = mapped_column(Integer, default=0)
    quests_completed: Mapped[int] = mapped_column(Integer, default=0)
    guilds_joined: Mapped[int] = mapped_column(Integer, default=0)
    # Rated arena matches played and won (a guild clash won counts for each member of the winning side).
    arena_matches: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    arena_wins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    current_streak: Mapped[int] = mapped_column(Integer, default=0)
    longest_streak: Mapped[int] = mapped_column(Integer, default=0)
    # The member's own calendar day (in their time zone) of their last activity, and its UTC instant.
    last_active_day: Mapped[date | None] = mapped_column(Date)
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A copy of the member's time zone (kept current by the profile-updated event): the streak needs the
    # member's calendar day on every accepted submission, without loading the user.
    timezone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LevelUp(db.Model):
    """A level a member reached, recorded once."""

    __tablename__ = "level_ups"
    __table_args__ = (UniqueConstraint("user_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    xp: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActiveDay(db.Model):
    """A calendar day (member's time zone) on which the member had an accepted submission."""

    __tablename__ = "active_days"
    __table_args__ = (UniqueConstraint("user_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StreakFreeze(db.Model):
    """A reward item: protects one missed day of a streak. `used_for` is the day it covered."""

    __tablename__ = "streak_freezes"
    __table_args__ = (Index("ix_streak_freezes_user_unused", "user_id", "used_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Exactly-once grant: the same reward never hands out a second freeze.
    source_key: Mapped[str] = mapped_column(String(160), unique=True)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_for: Mapped[date | None] = mapped_column(Date)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Quest(db.Model):
    __tablename__ = "quests"
    __table_args__ = (
        CheckConstraint(f"period IN {QUEST_PERIODS!r}", name="period_known"),
        CheckConstraint(f"objective IN {QUEST_OBJECTIVES!r}", name="objective_known"),
        CheckConstraint(f"scope IN {QUEST_SCOPES!r}", name="scope_known"),
        CheckConstraint("target >= 1", name="target_positive"),
        CheckConstraint("reward_points >= 0 AND reward_xp >= 0 AND reward_freezes >= 0", name="rewards_nonnegative"),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="ends_after_start"),
        # One quest per catalogue template and period: running a rotation twice adds nothing.
        UniqueConstraint("catalogue_slug", "rotation_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    period: Mapped[str] = mapped_column(String(16))
    objective: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    # For label_items: the task type to count ("" counts every type).
    task_type: Mapped[str] = mapped_column(String(48), default="")
    target: Mapped[int] = mapped_column(Integer)
    # For gold_accuracy: the accuracy in whole percent to reach over `target` gold items.
    accuracy_percent: Mapped[int | None] = mapped_column(Integer)
    reward_points: Mapped[int] = mapped_column(Integer, default=0)
    reward_xp: Mapped[int] = mapped_column(Integer, default=0)
    reward_badge: Mapped[str | None] = mapped_column(String(64))
    reward_freezes: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Quests the rotation made from the default catalogue (progression/quest_catalogue.py): the template's
    # slug and the day ("2026-11-22") or ISO week ("2026-W47") it runs for. None for moderators' quests.
    catalogue_slug: Mapped[str | None] = mapped_column(String(48))
    rotation_key: Mapped[str | None] = mapped_column(String(16))


class QuestProgress(db.Model):
    """A member's progress on one quest in one period ("2026-11-22", "2026-W47" or "once")."""

    __tablename__ = "quest_progress"
    __table_args__ = (
        UniqueConstraint("quest_id", "user_id", "period_key"),
        Index("ix_quest_progress_user_period", "user_id", "period_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quest_id: Mapped[int] = mapped_column(ForeignKey("quests.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    gold_correct: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GuildQuestProgress(db.Model):
    """A guild's collective progress on one guild-scope quest in one period. Each member's claim still
    goes through their own `QuestProgress` row (created at claim time), which keeps claims exactly-once."""

    __tablename__ = "guild_quest_progress"
    __table_args__ = (
        UniqueConstraint("quest_id", "guild_id", "period_key"),
        Index("ix_guild_quest_progress_guild_period", "guild_id", "period_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quest_id: Mapped[int] = mapped_column(ForeignKey("quests.id", ondelete="CASCADE"))
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    period_key: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    gold_correct: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BadgeAward(db.Model):
    """A badge held by a member: one row per member and badge, ever (revoking keeps the row)."""

    __tablename__ = "badge_awards"
    __table_args__ = (UniqueConstraint("user_id", "badge_slug"), Index("ix_badge_awards_slug", "badge_slug"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    badge_slug: Mapped[str] = mapped_column(String(64))
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # None when a rule awarded it; the moderator's id when awarded by hand.
    awarded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class MintRequest(db.Model):
    """The intent to mint an award on chain; the chain area's mint job moves it through its states."""

    __tablename__ = "mint_requests"
    __table_args__ = (CheckConstraint(f"state IN {MINT_STATES!r}", name="state_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    award_id: Mapped[int] = mapped_column(ForeignKey("badge_awards.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    badge_slug: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when the mint is queued in the chain's outbox (progression/minting.py): where it goes, its token.
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_transactions.id", ondelete="SET NULL"))
    token_id: Mapped[str | None] = mapped_column(String(80), index=True)  # uint256 in decimal
    wallet_address: Mapped[str | None] = mapped_column(String(42))
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)

