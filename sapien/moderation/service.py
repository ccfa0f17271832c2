"""Moderation rules. For now: the audit log every privileged action writes to."""

from __future__ import annotations

from datetime import datetime

from sapien.database import unit_of_work
from sapien.moderation.models import AuditLog


def record(actor_id: int | None, action: str, target: str, reason: str, now: datetime) -> AuditLog:
    """Append an audit row in the caller's transaction (or a transaction of its own)."""
    with unit_of_work() as session:
        row = AuditLog(actor_id=actor_id, action=action[:64], target=target[:128], reason=reason or "", created_at=now)
        session.add(row)
        session.flush()
    return row
