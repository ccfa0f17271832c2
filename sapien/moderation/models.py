from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, DateTime, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db


class AuditLog(db.Model):
    """One moderator or leader action on someone else's things: who, what, on what, why, when."""

    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_target", "target"), Index("ix_audit_logs_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    # A short, greppable reference to what was acted on, e.g. "user:12" or "badge_award:7".
    target: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- trust & safety ---------------------------------------------------------------------------------
SIGNAL_KINDS = ("sign_up", "login")
FLAG_STATES = ("open", "dismissed", "actioned")
DECISION_ACTIONS = ("dismiss", "warn", "restrict", "ban")
# What a restriction covers; a ban covers everything ("all").
RESTRICTION_SCOPES = ("labeling", "pack", "review", "arena", "airdrops", "all")
APPEAL_STATES = ("open", "upheld", "overturned")


class TrustSignal(db.Model):
    """A sign-up or sign-in, kept with care for privacy: the address only as a keyed hash (HMAC with the app's
    secret) and its /24 (IPv4) or /48 (IPv6) network, never in the clear; the browser's user agent and the
    first-party device cookie. Deleted after the retention period (docs/trust-and-safety.md)."""

    __tablename__ = "trust_signals"
    __table_args__ = (
        CheckConstraint(f"kind IN {SIGNAL_KINDS!r}", name="kind_known"),
        Index("ix_trust_signals_user", "user_id"),
        Index("ix_trust_signals_network", "network"),
        Index("ix_trust_signals_device", "device_id"),
        Index("ix_trust_signals_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    ip_hash: Mapped[str] = mapped_column(String(64))
    network: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Flag(db.Model):
    """A detector's or the fraud model's suspicion about one member, with its evidence, until a moderator
    decides it. One open flag per member and kind: a new scan refreshes it."""

    __tablename__ = "moderation_flags"
    __table_args__ = (
        CheckConstraint(f"status IN {FLAG_STATES!r}", name="status_known"),
        Index("uq_moderation_flags_open", "user_id", "kind", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
        Index("ix_moderation_flags_status_score", "status", "score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The detector's name ("fast_answers", "shared_signals", "collusion", "rubber_stamp", "review_ring",
    # "signup_burst") or "model".
    kind: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    # What the moderator sees: {"summary": str, "members": [ids], "features": [[name, value, weight]], ...}
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("moderation_decisions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Decision(db.Model):
    """A moderator's decision about a member: dismiss, warn, restrict (timed, scoped) or ban (escalating).
    Restrictions and bans are active from `starts_at` until `ends_at` (None: no end) unless lifted."""

    __tablename__ = "moderation_decisions"
    __table_args__ = (
        CheckConstraint(f"action IN {DECISION_ACTIONS!r}", name="action_known"),
        CheckConstraint(f"scope IS NULL OR scope IN {RESTRICTION_SCOPES!r}", name="scope_known"),
        Index("ix_moderation_decisions_user", "user_id", "action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str | None] = mapped_column(String(16))
    pack_id: Mapped[int | None] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the damage was undone (moderation/safety/reversal.py), with what it did.
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reversal: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DecisionAppeal(db.Model):
    """A member contesting a decision, once per decision; a second moderator (not the deciding one) decides."""

    __tablename__ = "moderation_appeals"
    __table_args__ = (CheckConstraint(f"status IN {APPEAL_STATES!r}", name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("moderation_decisions.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
