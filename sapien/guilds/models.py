from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

JOIN_POLICIES = ("open", "application", "invite")
GUILD_ROLES = ("leader", "officer", "member")
REQUEST_STATES = ("pending", "accepted", "declined", "withdrawn")


class Guild(db.Model):
    __tablename__ = "guilds"
    __table_args__ = (
        CheckConstraint(f"join_policy IN {JOIN_POLICIES!r}", name="join_policy_known"),
        CheckConstraint("min_level >= 1", name="min_level_positive"),
        CheckConstraint("min_reputation >= 0", name="min_reputation_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(48))
    # Case-folded name: "Night Owls" and "night owls" are the same guild name.
    name_key: Mapped[str] = mapped_column(String(48), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    join_policy: Mapped[str] = mapped_column(String(16), default="open")
    min_level: Mapped[int] = mapped_column(Integer, default=1)
    min_reputation: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disbanded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GuildMembership(db.Model):
    """A member's place in a guild. `user_id` is unique: one guild at a time, enforced by the database."""

    __tablename__ = "guild_memberships"
    __table_args__ = (
        CheckConstraint(f"role IN {GUILD_ROLES!r}", name="role_known"),
        # Exactly one leader per guild (a partial unique index, on PostgreSQL and SQLite alike).
        Index(
            "uq_guild_memberships_one_leader",
            "guild_id",
            unique=True,
            postgresql_where=text("role = 'leader'"),
            sqlite_where=text("role = 'leader'"),
        ),
        Index("ix_guild_memberships_guild_role", "guild_id", "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GuildApplication(db.Model):
    __tablename__ = "guild_applications"
    __table_args__ = (
        CheckConstraint(f"status IN {REQUEST_STATES!r}", name="status_known"),
        # One pending application per member and guild: applying twice is refused by the database too.
        Index(
            "uq_guild_applications_pending",
            "guild_id",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class GuildInvitation(db.Model):
    __tablename__ = "guild_invitations"
    __table_args__ = (
        CheckConstraint(f"status IN {REQUEST_STATES!r}", name="status_known"),
        Index(
            "uq_guild_invitations_pending",
            "guild_id",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
