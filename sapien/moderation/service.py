"""Moderation rules. For now: the audit log every privileged action writes to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.moderation.models import AuditLog


def record(actor_id: int | None, action: str, target: str, reason: str, now: datetime) -> AuditLog:
    """Append an audit row in the caller's transaction (or a transaction of its own)."""
    with unit_of_work() as session:
        row = AuditLog(actor_id=actor_id, action=action[:64], target=target[:128], reason=reason or "", created_at=now)
        session.add(row)
        session.flush()
    return row


def entries_for(target: str, limit: int = 50) -> list[AuditLog]:
    return list(
        db.session.scalars(select(AuditLog).where(AuditLog.target == target).order_by(AuditLog.id.desc()).limit(limit))
    )
