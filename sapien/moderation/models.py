from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
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
