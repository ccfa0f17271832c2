"""Levels from ledger XP, the member's progress counters, and XP history. XP itself lives in the ledger.

Level curve
-----------
Reaching level L needs ``LEVEL_XP_BASE * L * (L - 1) / 2`` XP in total (``LEVEL_XP_BASE`` is an
environment setting, 100 by default): level 2 at 100 XP, 3 at 300, 4 at 600, 5 at 1,000, 10 at
4,500, 25 at 30,000. Each level costs ``LEVEL_XP_BASE`` more than the one before, so early levels
come fast and later ones reward steady work. Level-ups are detected from the ledger's XP postings
(``ledger_entry_posted``), recorded once per member and level (``level_ups``, unique), and announced
with ``level_reached``, a notification and, in the request that caused them, a toast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from math import isqrt

from flask import current_app
from sqlalchemy import bindparam, select

from sapien import events
from sapien.database import after_commit, as_utc, built_once, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry
from sapien.notifications.service import notify
from sapien.progression.awards import award_rule_badges, badge_stats
from sapien.progression.badges import BadgeStats
from sapien.progression.models import (
    LevelUp,
    MemberProgress,
)

log = logging.getLogger(__name__)


def setting(name: str, default):
    return current_app.config.get(name, default)


# --- levels -------------------------------------------------------------------------------------


def xp_for_level(level: int, base: int | None = None) -> int:
    """Total XP needed to reach `level`: base * L * (L - 1) / 2 (level 2 at 100, 3 at 300, 4 at 600 …)."""
    base = base or current_app.config["LEVEL_XP_BASE"]
    return base * level * (level - 1) // 2


def level_for_xp(xp: int, base: int | None = None) -> int:
    base = base or current_app.config["LEVEL_XP_BASE"]
    # Solve base * L * (L - 1) / 2 <= xp for the largest whole L, then correct for rounding.
    level = max(1, (1 + isqrt(1 + 8 * max(xp, 0) // base)) // 2)
    while xp_for_level(level + 1, base) <= xp:
        level += 1
    while level > 1 and xp_for_level(level, base) > xp:
        level -= 1
    return level


@dataclass(frozen=True)
class LevelProgress:
    level: int
    xp: int
    level_floor: int
    next_level_at: int

    @property
    def into_level(self) -> int:
        return self.xp - self.level_floor

    @property
    def span(self) -> int:
        return self.next_level_at - self.level_floor

    @property
    def percent(self) -> int:
        return min(100, (100 * self.into_level) // self.span) if self.span else 100


def level_progress(xp: int) -> LevelProgress:
    level = level_for_xp(xp)
    return LevelProgress(level=level, xp=xp, level_floor=xp_for_level(level), next_level_at=xp_for_level(level + 1))


def member_level(user_id: int) -> int:
    """The member's level from their XP balance in the ledger."""
    return level_for_xp(ledger.balance(user_id, "xp"))


def progress_row(user_id: int, now: datetime, lock: bool = True) -> MemberProgress:
    """The member's counters row, created on first use and locked for this transaction."""
    session = db.session
    session.execute(dialect_insert(MemberProgress).values(user_id=user_id, updated_at=now).on_conflict_do_nothing())
    query = select(MemberProgress).where(MemberProgress.user_id == user_id).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one()


def bump_progress(user_id: int, now: datetime, **increments: int) -> tuple[MemberProgress, BadgeStats]:
    """Add to the member's counters in one statement (creating the row if needed), which also locks
    the row for this transaction. Returns the row and the badge stats as they were before."""
    statement = _bump_statement(db.engine.dialect.name, tuple(sorted(increments)))
    values = {"bumped_user_id": user_id, "bumped_at": now, **{f"bump_{name}": amount for name, amount in increments.items()}}
    row = db.session.scalars(statement, values, execution_options={"populate_existing": True}).one()
    before = badge_stats(row)
    before = BadgeStats(**{**before.__dict__, **{name: getattr(before, name) - amount for name, amount in increments.items()}})
    return row, before


def bump_labels_accepted(counts: dict[int, int], now: datetime) -> dict[int, tuple[MemberProgress, BadgeStats]]:
    """`bump_progress` of `labels_accepted` for many members ({member: answers}) in one round trip, their rows
    locked in member order (a settlement batch's members)."""
    statement = _bump_many_statement(db.engine.dialect.name)
    values = [{"user_id": user_id, "labels_accepted": count, "updated_at": now} for user_id, count in sorted(counts.items())]
    bumped = {}
    for row in db.session.scalars(statement, values, execution_options={"populate_existing": True}):
        before = badge_stats(row)
        bumped[row.user_id] = (row, BadgeStats(**{**before.__dict__, "labels_accepted": before.labels_accepted - counts[row.user_id]}))
    return bumped


@built_once
def _bump_many_statement(dialect_name: str):
    """The upsert behind `bump_labels_accepted`, one row of values per member (sent as one multi-row INSERT)."""
    statement = dialect_insert(MemberProgress, dialect_name)
    return statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={"labels_accepted": MemberProgress.labels_accepted + statement.excluded.labels_accepted, "updated_at": statement.excluded.updated_at},
    ).returning(MemberProgress, sort_by_parameter_order=True)


@built_once
def _bump_statement(dialect_name: str, counters: tuple[str, ...]):
    """`bump_progress`'s upsert for these counters (every paid answer runs it). Parameters: `bumped_user_id`,
    `bumped_at`, `bump_<counter>`."""
    amounts = {name: bindparam(f"bump_{name}") for name in counters}
    at = bindparam("bumped_at")
    statement = dialect_insert(MemberProgress, dialect_name).values(user_id=bindparam("bumped_user_id"), updated_at=at, **amounts)
    return statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={**{name: getattr(MemberProgress, name) + amount for name, amount in amounts.items()}, "updated_at": at},
    ).returning(MemberProgress)


def record_level_ups(user_id: int, xp: int, now: datetime) -> list[int]:
    """Record every level `xp` reaches that the member had not reached yet; returns the new levels.

    Safe to call twice or concurrently: each (member, level) row is inserted once, and only the call
    that inserted it announces it.
    """
    level = level_for_xp(xp)
    reached: list[int] = []
    with unit_of_work() as session:
        row = progress_row(user_id, now)
        if level <= row.level:
            return []
        before = badge_stats(row)
        for new_level in range(row.level + 1, level + 1):
            inserted = session.execute(
                dialect_insert(LevelUp)
                .values(user_id=user_id, level=new_level, xp=xp, reached_at=now)
                .on_conflict_do_nothing(index_elements=["user_id", "level"])
                .returning(LevelUp.id)
            ).scalar()
            if inserted is not None:
                reached.append(new_level)
        row.level = level
        row.updated_at = now
        if reached:
            top = max(reached)
            notify(user_id, "level_up", {"level": top}, link="/dashboard", key=f"level:{user_id}:{top}", now=now)
            award_rule_badges(user_id, row, now, before=before)
            for new_level in reached:
                after_commit(lambda lv=new_level: events.level_reached.send(None, user_id=user_id, level=lv, now=now))
    return reached


def level_history(user_id: int, limit: int = 20) -> list[LevelUp]:
    return list(
        db.session.scalars(select(LevelUp).where(LevelUp.user_id == user_id).order_by(LevelUp.level.desc()).limit(limit))
    )


@dataclass(frozen=True)
class XpDay:
    day: date
    xp: int


def xp_history(user_id: int, now: datetime, days: int = 30) -> list[XpDay]:
    """XP earned per UTC day over the last `days` days (zeros included), read from the ledger."""

    start = (now - timedelta(days=days - 1)).date()
    since = datetime(start.year, start.month, start.day, tzinfo=now.tzinfo)
    rows = db.session.execute(
        select(LedgerEntry.created_at, LedgerEntry.amount).where(
            LedgerEntry.user_id == user_id, LedgerEntry.currency == "xp", LedgerEntry.created_at >= since
        )
    )
    totals: dict[date, int] = {}
    for created_at, amount in rows:
        day = as_utc(created_at).date()
        totals[day] = totals.get(day, 0) + amount
    return [XpDay(day=start + timedelta(days=i), xp=totals.get(start + timedelta(days=i), 0)) for i in range(days)]
