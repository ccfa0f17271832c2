"""Progress a member can see: what their next level unlocks, the nearest locked pack and how far it is,
their rank with the gap to the place above, and the streak calendar.

Read models only, gathered from each area's tables and boards; nothing here changes anything. The
dashboard that shows them is cached per member (`member_cache`), so these run once per change, not once
per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from sapien.extensions import db


def level_unlocks(level: int) -> list[str]:
    """What reaching `level` opens: packs gated at that level and, at its level, founding a guild."""
    from sapien.labeling.models import Campaign, TaskPack

    names = list(
        db.session.scalars(
            select(TaskPack.name)
            .join(Campaign, Campaign.id == TaskPack.campaign_id)
            .where(TaskPack.min_level == level, TaskPack.status == "open", Campaign.status == "active")
            .order_by(TaskPack.name)
            .limit(5)
        )
    )
    unlocks = [str(_l("The “%(pack)s” pack", pack=name)) for name in names]
    if level == current_app.config.get("GUILD_CREATE_MIN_LEVEL", 3):
        unlocks.append(str(_l("Founding your own guild")))
    return unlocks


@dataclass(frozen=True)
class NextUnlock:
    pack_name: str
    pack_slug: str
    level: int
    xp_needed: int
    answers_needed: int | None  # at the best XP per verified answer among the packs the member can do


def next_unlock(user_id: int, xp: int) -> NextUnlock | None:
    """The locked pack nearest to the member that only a level stands between (reputation, stake and
    exams have their own paths), with the XP and roughly how many verified answers it takes."""
    from sapien.labeling.models import Campaign, TaskPack
    from sapien.labeling.packs import reward_multiplier
    from sapien.progression.levels import level_for_xp, xp_for_level

    level = level_for_xp(xp)
    rows = db.session.execute(
        select(TaskPack.name, TaskPack.slug, TaskPack.min_level, TaskPack.min_reputation, TaskPack.min_stake,
               TaskPack.exam_required, TaskPack.reward_xp, TaskPack.task_type, TaskPack.difficulty)
        .join(Campaign, Campaign.id == TaskPack.campaign_id)
        .where(TaskPack.status == "open", Campaign.status == "active")
    ).all()
    best_xp = max(
        (int(row.reward_xp * reward_multiplier(row.task_type, row.difficulty)) for row in rows
         if row.min_level <= level and row.min_reputation <= 0 and row.min_stake <= 0 and not row.exam_required),
        default=0,
    )
    locked = sorted((row for row in rows if row.min_level > level), key=lambda row: (row.min_level, row.name))
    if not locked:
        return None
    target = locked[0]
    needed = max(0, xp_for_level(target.min_level) - xp)
    answers = -(-needed // best_xp) if best_xp else None
    return NextUnlock(target.name, target.slug, target.min_level, needed, answers)


@dataclass(frozen=True)
class RankGap:
    rank: int
    size: int
    xp: int
    gap: int | None  # XP to pass the member just above (None at the top)


def rank_gap(user_id: int, now: datetime) -> RankGap | None:
    """The member's place on this week's XP board and the XP between them and the place above."""
    from redis.exceptions import RedisError

    from sapien.leaderboards.boards import Board, decode_xp, member_of
    from sapien.leaderboards.reading import read_key
    from sapien.queue import redis_connection

    try:
        connection = redis_connection()
        key, _frozen = read_key(Board("xp", "week"), now, connection)
        pipe = connection.pipeline(transaction=False)
        pipe.zrevrank(key, member_of(user_id))
        pipe.zscore(key, member_of(user_id))
        pipe.zcard(key)
        rank, score, size = pipe.execute()
        if rank is None:
            return None
        above = connection.zrevrange(key, rank - 1, rank - 1, withscores=True) if rank > 0 else []
    except RedisError:
        return None
    mine = decode_xp(score)
    gap = max(1, decode_xp(above[0][1]) - mine + 1) if above else None
    return RankGap(rank=rank + 1, size=size, xp=mine, gap=gap)


@dataclass(frozen=True)
class CalendarDay:
    day: date
    active: bool
    today: bool
    future: bool


def streak_calendar(user_id: int, today: date, weeks: int = 5) -> list[list[CalendarDay]]:
    """The last `weeks` ISO weeks (Monday first) ending with the week of `today`, each day marked
    active when the member had an accepted answer that day (their own calendar day)."""
    from sapien.progression.models import ActiveDay

    start = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    active = set(
        db.session.scalars(select(ActiveDay.day).where(ActiveDay.user_id == user_id, ActiveDay.day >= start, ActiveDay.day <= today))
    )
    days = [start + timedelta(days=i) for i in range(7 * weeks)]
    return [
        [CalendarDay(day, day in active, day == today, day > today) for day in days[week * 7 : week * 7 + 7]]
        for week in range(weeks)
    ]


@dataclass(frozen=True)
class StartingPoint:
    """Where a member with no answer yet should begin: a pack (None when no pack is open to them yet)."""

    pack_name: str | None = None
    pack_slug: str | None = None
    points: int = 0
    xp: int = 0


def starting_point(user_id: int) -> StartingPoint | None:
    """None once the member has answered anything. Before that, the pack that suits a first session:
    open to them, with items left, the easiest difficulty first and the best paid among those (the
    marketplace's order)."""
    from sapien.labeling.access import marketplace
    from sapien.labeling.models import DIFFICULTIES, Submission

    if db.session.scalar(select(Submission.id).where(Submission.user_id == user_id).limit(1)) is not None:
        return None
    cards = [card for card in marketplace(user_id) if card.access.unlocked and card.remaining > 0]
    if not cards:
        return StartingPoint()
    best = min(cards, key=lambda card: DIFFICULTIES.index(card.pack.difficulty))  # min keeps the first of equals
    return StartingPoint(best.pack.name, best.pack.slug, best.points, best.xp)
