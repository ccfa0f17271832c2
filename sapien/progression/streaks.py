"""Streaks: active days in the member's own time zone, freezes, and the reward multiplier.

Streaks
-------
A member is active on a day when they gave an answer that day that was verified (counted when it is
paid, see labeling/settlement.py; a day earlier than the last one counted is not counted again), in the
member's own time zone (``User.timezone``); instants are stored in UTC. Consecutive active days make the
streak. A missed day breaks it unless the member holds a *streak freeze* (a reward item from quests,
or bought with points): each freeze protects exactly one missed day and is used up automatically.
``streak_multiplier(user_id, now)`` is the bonus labeling applies to rewards (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from sapien.accounts.service import get_user
from sapien.database import as_utc, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.i18n import zone_or_utc
from sapien.ledger import service as ledger
from sapien.progression.errors import ProgressionError
from sapien.progression.levels import progress_row, setting
from sapien.progression.models import (
    ActiveDay,
    MemberProgress,
    StreakFreeze,
)

# The streak lengths worth a celebration: a toast on the request that reached one, and a notification.
STREAK_MILESTONES = frozenset({3, 7, 14, 30, 50, 100, 180, 365})


def _zone(name: str | None) -> ZoneInfo:
    return zone_or_utc(name)


def _user_zone(user_id: int) -> ZoneInfo:
    user = get_user(user_id)
    return _zone(user.timezone if user else None)


def _progress_zone(user_id: int, row: MemberProgress) -> ZoneInfo:
    """The member's zone as their progress row keeps it (a copy, so a submission needs no user query)."""
    if row.timezone is None:
        row.timezone = str(_user_zone(user_id))
    return _zone(row.timezone)


def on_profile_updated(_sender=None, *, user_id: int, timezone: str | None = None, **_ignored) -> None:
    """Keep the progress row's copy of the member's time zone current."""
    if timezone is None:
        return
    with unit_of_work() as session:
        session.execute(update(MemberProgress).where(MemberProgress.user_id == user_id).values(timezone=timezone))


def local_day(user_id: int, now: datetime) -> date:
    """The member's calendar day at the UTC instant `now`."""
    return as_utc(now).astimezone(_user_zone(user_id)).date()


def _unused_freezes(user_id: int, lock: bool = False, limit: int | None = None) -> list[StreakFreeze]:
    query = select(StreakFreeze).where(StreakFreeze.user_id == user_id, StreakFreeze.used_for.is_(None))
    query = query.order_by(StreakFreeze.id)
    if limit is not None:
        query = query.limit(limit)
    if lock:
        query = query.with_for_update()
    return list(db.session.scalars(query))


def record_activity(user_id: int, row: MemberProgress, now: datetime) -> bool:
    """Count `now` as an active day; returns True when the streak changed. Runs in the caller's transaction."""
    today = as_utc(now).astimezone(_progress_zone(user_id, row)).date()
    if row.last_active_day is not None and today <= row.last_active_day:
        return False  # already counted today (or a late event for an earlier day)
    db.session.execute(
        dialect_insert(ActiveDay).values(user_id=user_id, day=today, first_at=now).on_conflict_do_nothing(
            index_elements=["user_id", "day"]
        )
    )
    last = row.last_active_day
    if last is None:
        row.current_streak = 1
    else:
        missed = (today - last).days - 1
        if missed == 0:
            row.current_streak += 1
        else:
            freezes = _unused_freezes(user_id, lock=True, limit=missed)
            if len(freezes) == missed:
                for offset, freeze in enumerate(freezes, start=1):
                    freeze.used_for = last + timedelta(days=offset)
                    freeze.used_at = now
                row.current_streak += 1
            else:
                row.current_streak = 1
    row.longest_streak = max(row.longest_streak, row.current_streak)
    row.last_active_day = today
    row.last_active_at = now
    return True


@dataclass(frozen=True)
class StreakState:
    current: int
    longest: int
    active_today: bool
    freezes: int
    last_active_day: date | None


def _alive_streak(row: MemberProgress | None, today: date, freezes: int) -> int:
    if row is None or row.last_active_day is None:
        return 0
    missed = (today - row.last_active_day).days - 1
    if missed <= 0 or missed <= freezes:
        return row.current_streak
    return 0


def streak_state(user_id: int, now: datetime) -> StreakState:
    row = db.session.get(MemberProgress, user_id)
    freezes = len(_unused_freezes(user_id))
    today = local_day(user_id, now)
    return StreakState(
        current=_alive_streak(row, today, freezes),
        longest=row.longest_streak if row else 0,
        active_today=bool(row and row.last_active_day == today),
        freezes=freezes,
        last_active_day=row.last_active_day if row else None,
    )


def streak_multiplier(user_id: int, now: datetime) -> Decimal:
    """The reward multiplier labeling applies for a member's streak, e.g. ``points * multiplier``.

    ``1 + STREAK_BONUS_PER_DAY_PERCENT/100 * (streak - 1)``, capped at ``STREAK_MULTIPLIER_CAP_PERCENT/100``
    (defaults: 5% per day after the first, capped at 1.5). `streak` is the member's live streak at
    `now` (a streak whose gap is covered by held freezes still counts; a broken one is 0 → 1.0).
    Always a Decimal >= 1; callers round the product down to a whole amount.
    """
    per_day = Decimal(setting("STREAK_BONUS_PER_DAY_PERCENT", 5)) / 100
    cap = Decimal(setting("STREAK_MULTIPLIER_CAP_PERCENT", 150)) / 100
    row = db.session.get(MemberProgress, user_id)
    # The zone streaks are recorded in: the progress row's copy when there is one (no user query).
    zone = _zone(row.timezone) if row is not None and row.timezone else _user_zone(user_id)
    today = as_utc(now).astimezone(zone).date()
    missed = (today - row.last_active_day).days - 1 if row is not None and row.last_active_day is not None else 0
    # Held freezes matter only after a missed day, so every answer on a running streak skips reading them.
    freezes = len(_unused_freezes(user_id, limit=missed)) if missed > 0 else 0
    streak = _alive_streak(row, today, freezes)
    return max(Decimal(1), min(cap, Decimal(1) + per_day * max(0, streak - 1)))


def grant_streak_freeze(user_id: int, *, key: str, now: datetime) -> bool:
    """Give one streak freeze once per `key`; returns False when that key was already granted."""
    with unit_of_work() as session:
        inserted = session.execute(
            dialect_insert(StreakFreeze)
            .values(user_id=user_id, source_key=key, granted_at=now)
            .on_conflict_do_nothing(index_elements=["source_key"])
            .returning(StreakFreeze.id)
        ).scalar()
    return inserted is not None


def buy_streak_freeze(user_id: int, now: datetime) -> None:
    """Buy one freeze with points: at most one purchase per UTC day, and only up to the holding limit."""

    price = int(setting("STREAK_FREEZE_PRICE_POINTS", 200))
    most = int(setting("STREAK_FREEZE_MAX_HELD", 2))
    key = f"streak-freeze:{user_id}:{as_utc(now).date().isoformat()}"
    with unit_of_work():
        progress_row(user_id, now)  # serialises purchases by the same member
        if db.session.scalar(select(StreakFreeze.id).where(StreakFreeze.source_key == key)):
            raise ProgressionError(_l("You already bought a streak freeze today."))
        if len(_unused_freezes(user_id)) >= most:
            raise ProgressionError(_l("You already hold %(count)d streak freezes, the most you can keep.", count=most))
        try:
            ledger.debit(user_id, "points", price, kind="streak_freeze", key=key, now=now)
        except ledger.InsufficientBalance:
            raise ProgressionError(_l("A streak freeze costs %(price)d points, and you have fewer.", price=price)) from None
        grant_streak_freeze(user_id, key=key, now=now)
