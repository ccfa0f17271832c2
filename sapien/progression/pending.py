"""Progression work the database says is still to do, for the reconciler.

A member whose XP balance reaches a level above the one recorded for them missed a level-up (XP posted
while listeners were off, a job killed mid-run): their sync job is pending until it records the level.
The current day's or ISO week's catalogue quests, when missing, are a rotation job to run.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import func, select

from sapien.database import utcnow
from sapien.extensions import db
from sapien.ledger.models import Balance
from sapien.periods import period_key
from sapien.progression.models import MemberProgress
from sapien.progression.quest_catalogue import missing_rotation, rotation_enabled
from sapien.queue import PendingWork, pending_work_source


def members_behind(limit: int = 10_000) -> list[int]:
    """Members whose XP reaches their next level (base · (L+1) · L / 2) while level L is recorded."""
    base = int(current_app.config["LEVEL_XP_BASE"])
    level = func.coalesce(MemberProgress.level, 1)
    query = (
        select(Balance.user_id)
        .outerjoin(MemberProgress, MemberProgress.user_id == Balance.user_id)
        .where(Balance.currency == "xp", Balance.amount >= base * (level + 1) * level / 2)
        .order_by(Balance.user_id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def sync_job_id(user_id: int) -> str:
    return f"progression-sync-{user_id}"


@pending_work_source("progression-sync")
def _members_to_sync():
    for user_id in members_behind():
        yield PendingWork("jobs.progression.sync_member_progress", (user_id,), sync_job_id(user_id))


def rotation_job_id(now: datetime) -> str:
    return f"progression-quest-rotation-{period_key('daily', now)}"


# Periodic: nothing waits on it (the first read rotates too), so the invariant check expects no job.
@pending_work_source("progression-quest-rotation", periodic=True)
def _rotation_pending():
    now = utcnow()
    if rotation_enabled() and missing_rotation(now):
        yield PendingWork("jobs.progression.rotate_quests", (), rotation_job_id(now))
