"""Progression rules: levels from ledger XP, streaks, quests, badges. XP itself lives in the ledger.

Level curve
-----------
Reaching level L needs ``LEVEL_XP_BASE * L * (L - 1) / 2`` XP in total (``LEVEL_XP_BASE`` is an
environment setting, 100 by default): level 2 at 100 XP, 3 at 300, 4 at 600, 5 at 1,000, 10 at
4,500, 25 at 30,000. Each level costs ``LEVEL_XP_BASE`` more than the one before, so early levels
come fast and later ones reward steady work. Level-ups are detected from the ledger's XP postings
(``ledger_entry_posted``), recorded once per member and level (``level_ups``, unique), and announced
with ``level_reached``, a notification and, in the request that caused them, a toast.

Streaks
-------
A member is active on a day when a submission of theirs is accepted that day, counted in the member's
own time zone (``User.timezone``); instants are stored in UTC. Consecutive active days make the
streak. A missed day breaks it unless the member holds a *streak freeze* (a reward item from quests,
or bought with points): each freeze protects exactly one missed day and is used up automatically.
``streak_multiplier(user_id, now)`` is the bonus labeling applies to rewards (see its docstring).

Quests
------
Moderators define daily, weekly and one-off (seasonal) quests. Progress rows are keyed by period:
the UTC date ("2026-11-22") for daily quests, the ISO week ("2026-W47") for weekly ones and "once"
for one-off quests, so a new day or ISO week starts from zero without any job. Progress moves on
events; a completed quest is claimed once: the claim is a conditional UPDATE of the progress row and
every reward is a ledger posting with a key derived from that row.

Guild quests
------------
A quest's ``scope`` is "member" (each member progresses alone) or "guild": the members of a guild
progress together, in one ``guild_quest_progress`` row per quest, guild and period, moved by the same
single-statement upsert as a member's row whenever any member of the guild does the work (a member in
no guild moves nothing). Only labeling (optionally of one task type) and reviews can be guild
objectives, and targets may be up to ``GUILD_MAX_MEMBERS`` times a member quest's. When the guild
completes a period, every current member is notified; each member of the guild then claims the reward
once for that period through their own ``quest_progress`` row (created at claim time), so claims keep
the same exactly-once gate and ledger keys as member quests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from math import isqrt
from uuid import uuid4
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from sqlalchemy import and_, case, func, or_, select, true, update

from sapien import events
from sapien.database import after_commit, as_utc, dialect_insert, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.progression.badges import BADGES, CATALOGUE, Badge, BadgeStats, earned_by_rules, get_badge
from sapien.progression.models import (
    QUEST_OBJECTIVES,
    QUEST_PERIODS,
    QUEST_SCOPES,
    ActiveDay,
    BadgeAward,
    GuildQuestProgress,
    LevelUp,
    MemberProgress,
    MintRequest,
    Quest,
    QuestProgress,
    StreakFreeze,
)

log = logging.getLogger(__name__)


class ProgressionError(DomainError):
    pass


class QuestError(ProgressionError):
    pass


class BadgeError(ProgressionError):
    pass


def _config(name: str, default):
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


def _progress_row(user_id: int, now: datetime, lock: bool = True) -> MemberProgress:
    """The member's counters row, created on first use and locked for this transaction."""
    session = db.session
    session.execute(dialect_insert(MemberProgress).values(user_id=user_id, updated_at=now).on_conflict_do_nothing())
    query = select(MemberProgress).where(MemberProgress.user_id == user_id).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one()


def _bump_progress(user_id: int, now: datetime, **increments: int) -> tuple[MemberProgress, BadgeStats]:
    """Add to the member's counters in one statement (creating the row if needed), which also locks
    the row for this transaction. Returns the row and the badge stats as they were before."""
    statement = dialect_insert(MemberProgress).values(user_id=user_id, updated_at=now, **increments)
    statement = statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={**{name: getattr(MemberProgress, name) + amount for name, amount in increments.items()}, "updated_at": now},
    ).returning(MemberProgress)
    row = db.session.scalars(statement, execution_options={"populate_existing": True}).one()
    before = _stats(row)
    before = BadgeStats(**{**before.__dict__, **{name: getattr(before, name) - amount for name, amount in increments.items()}})
    return row, before


def record_level_ups(user_id: int, xp: int, now: datetime) -> list[int]:
    """Record every level `xp` reaches that the member had not reached yet; returns the new levels.

    Safe to call twice or concurrently: each (member, level) row is inserted once, and only the call
    that inserted it announces it.
    """
    level = level_for_xp(xp)
    reached: list[int] = []
    with unit_of_work() as session:
        row = _progress_row(user_id, now)
        if level <= row.level:
            return []
        before = _stats(row)
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
            from sapien.notifications.service import notify

            top = max(reached)
            notify(user_id, "level_up", {"level": top}, link="/dashboard", key=f"level:{user_id}:{top}", now=now)
            _award_rule_badges(user_id, row, now, before=before)
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
    from sapien.ledger.models import LedgerEntry

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


# --- streaks ------------------------------------------------------------------------------------


def _zone(name: str | None) -> ZoneInfo:
    from sapien.i18n import zone_or_utc

    return zone_or_utc(name)


def _user_zone(user_id: int) -> ZoneInfo:
    from sapien.accounts.service import get_user

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


def _record_activity(user_id: int, row: MemberProgress, now: datetime) -> bool:
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
    per_day = Decimal(_config("STREAK_BONUS_PER_DAY_PERCENT", 5)) / 100
    cap = Decimal(_config("STREAK_MULTIPLIER_CAP_PERCENT", 150)) / 100
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
    from sapien.ledger import service as ledger

    price = int(_config("STREAK_FREEZE_PRICE_POINTS", 200))
    most = int(_config("STREAK_FREEZE_MAX_HELD", 2))
    key = f"streak-freeze:{user_id}:{as_utc(now).date().isoformat()}"
    with unit_of_work():
        _progress_row(user_id, now)  # serialises purchases by the same member
        if db.session.scalar(select(StreakFreeze.id).where(StreakFreeze.source_key == key)):
            raise ProgressionError(_l("You already bought a streak freeze today."))
        if len(_unused_freezes(user_id)) >= most:
            raise ProgressionError(_l("You already hold %(count)d streak freezes, the most you can keep.", count=most))
        try:
            ledger.debit(user_id, "points", price, kind="streak_freeze", key=key, now=now)
        except ledger.InsufficientBalance:
            raise ProgressionError(_l("A streak freeze costs %(price)d points, and you have fewer.", price=price)) from None
        grant_streak_freeze(user_id, key=key, now=now)


# --- quests: definitions ---------------------------------------------------------------------------

MAX_TARGETS = {"daily": 1_000, "weekly": 5_000, "once": 100_000}
MAX_STREAK_TARGET = 3_650
MAX_REWARD = 1_000_000
OBJECTIVE_LABELS = {
    "label_items": _l("Label items"),
    "gold_accuracy": _l("Gold accuracy"),
    "reviews": _l("Complete reviews"),
    "streak_days": _l("Keep a streak"),
    "join_guild": _l("Join a guild"),
}
PERIOD_LABELS = {"daily": _l("Daily"), "weekly": _l("Weekly"), "once": _l("One-off (seasonal)")}
SCOPE_LABELS = {"member": _l("Each member"), "guild": _l("Whole guild")}
# What a guild can do together: objectives that add up across members (accuracy, streaks and joining
# are personal).
GUILD_OBJECTIVES = ("label_items", "reviews")


def max_target(period: str, scope: str = "member") -> int:
    """The largest target a quest may set: a guild quest may ask for up to GUILD_MAX_MEMBERS times
    what one member could do in the period."""
    most = MAX_TARGETS[period]
    if scope == "guild":
        most *= max(1, int(_config("GUILD_MAX_MEMBERS", 50)))
    return most


@dataclass
class QuestDefinition:
    title: str
    period: str
    objective: str
    target: int
    starts_at: datetime
    ends_at: datetime | None = None
    description: str = ""
    task_type: str = ""
    accuracy_percent: int | None = None
    reward_points: int = 0
    reward_xp: int = 0
    reward_badge: str | None = None
    reward_freezes: int = 0
    is_active: bool = True
    scope: str = "member"


def validate_quest(data: QuestDefinition, now: datetime, *, creating: bool) -> None:
    """Refuse a definition no member could complete or that makes no sense, with a message per field."""
    if not data.title or not data.title.strip():
        raise QuestError(_l("Give the quest a title."), "title")
    if len(data.title.strip()) > 120:
        raise QuestError(_l("Titles are at most 120 characters."), "title")
    if data.period not in QUEST_PERIODS:
        raise QuestError(_l("Choose a period from the list."), "period")
    if data.objective not in QUEST_OBJECTIVES:
        raise QuestError(_l("Choose an objective from the list."), "objective")
    if data.scope not in QUEST_SCOPES:
        raise QuestError(_l("Choose a scope from the list."), "scope")
    if data.scope == "guild" and data.objective not in GUILD_OBJECTIVES:
        raise QuestError(
            _l("A whole-guild quest can only count labeled items or reviews: choose “Each member” for this objective."), "scope"
        )
    if data.target is None or data.target < 1:
        raise QuestError(_l("The target must be at least 1."), "target")
    if data.objective == "join_guild" and data.target != 1:
        raise QuestError(_l("Joining a guild is done once: the target must be 1."), "target")
    if data.objective == "streak_days":
        if data.target > MAX_STREAK_TARGET:
            raise QuestError(_l("A streak target can be at most %(most)d days.", most=MAX_STREAK_TARGET), "target")
    elif data.target > max_target(data.period, data.scope):
        most = max_target(data.period, data.scope)
        raise QuestError(
            _l("No guild can reach %(target)d in one period: the most is %(most)d.", target=data.target, most=most)
            if data.scope == "guild"
            else _l("Nobody can reach %(target)d in one period: the most is %(most)d.", target=data.target, most=most),
            "target",
        )
    if data.objective == "gold_accuracy" and (data.accuracy_percent is None or not (1 <= data.accuracy_percent <= 100)):
        raise QuestError(_l("Give an accuracy between 1 and 100 percent."), "accuracy_percent")
    if data.objective != "label_items" and data.task_type:
        raise QuestError(_l("A task type only applies to labeling quests."), "task_type")
    if data.ends_at is not None and data.ends_at <= data.starts_at:
        raise QuestError(_l("The quest must end after it starts."), "ends_at")
    if data.period == "once" and data.ends_at is None:
        raise QuestError(_l("A one-off quest needs an end date."), "ends_at")
    if creating and data.ends_at is not None and data.ends_at <= now:
        raise QuestError(_l("That end date is already past."), "ends_at")
    if data.period == "once" and data.objective == "streak_days" and data.ends_at is not None:
        window_days = (data.ends_at - max(data.starts_at, now)).days + 1
        # A streak counts days already kept, so only a streak that could not even fit from today is refused
        # when the quest starts in the future.
        if data.starts_at > now and window_days < data.target:
            raise QuestError(
                _l("A %(days)d-day streak cannot fit in this quest's window.", days=data.target), "target"
            )
    for name in ("reward_points", "reward_xp", "reward_freezes"):
        value = getattr(data, name)
        if value is None or value < 0 or value > MAX_REWARD:
            raise QuestError(_l("Rewards are whole numbers from 0 to 1,000,000."), name)
    if data.reward_freezes > 5:
        raise QuestError(_l("A quest can give at most 5 streak freezes."), "reward_freezes")
    if data.reward_badge and data.reward_badge not in BADGES:
        raise QuestError(_l("Choose a badge from the catalogue."), "reward_badge")
    if not (data.reward_points or data.reward_xp or data.reward_badge or data.reward_freezes):
        raise QuestError(_l("Give the quest at least one reward."), "reward_points")


def _apply(quest: Quest, data: QuestDefinition, now: datetime) -> None:
    quest.title = data.title.strip()
    quest.description = (data.description or "").strip()
    quest.period = data.period
    quest.objective = data.objective
    quest.scope = data.scope
    quest.task_type = (data.task_type or "").strip()
    quest.target = data.target
    quest.accuracy_percent = data.accuracy_percent if data.objective == "gold_accuracy" else None
    quest.reward_points = data.reward_points
    quest.reward_xp = data.reward_xp
    quest.reward_badge = data.reward_badge or None
    quest.reward_freezes = data.reward_freezes
    quest.starts_at = data.starts_at
    quest.ends_at = data.ends_at
    quest.is_active = data.is_active
    quest.updated_at = now


def create_quest(data: QuestDefinition, *, actor_id: int, now: datetime) -> Quest:
    validate_quest(data, now, creating=True)
    with unit_of_work() as session:
        quest = Quest(created_by=actor_id, created_at=now)
        _apply(quest, data, now)
        session.add(quest)
        session.flush()
        _announce_quests_changed()
    return quest


def update_quest(quest_id: int, data: QuestDefinition, *, actor_id: int, now: datetime) -> Quest:
    validate_quest(data, now, creating=False)
    with unit_of_work() as session:
        quest = session.get(Quest, quest_id)
        if quest is None:
            raise LookupError(quest_id)
        if data.scope != quest.scope and _has_progress(quest_id):
            # Progress of one kind would silently stop counting (and claims be stranded): refuse.
            raise QuestError(
                _l("Members have already made progress on this quest, so its scope cannot change. Create a new quest instead."),
                "scope",
            )
        _apply(quest, data, now)
        _announce_quests_changed()
    return quest


def _has_progress(quest_id: int) -> bool:
    return bool(
        db.session.scalar(select(QuestProgress.id).where(QuestProgress.quest_id == quest_id).limit(1))
        or db.session.scalar(select(GuildQuestProgress.id).where(GuildQuestProgress.quest_id == quest_id).limit(1))
    )


def get_quest(quest_id: int) -> Quest | None:
    return db.session.get(Quest, quest_id)


def all_quests() -> list[Quest]:
    return list(db.session.scalars(select(Quest).order_by(Quest.is_active.desc(), Quest.starts_at.desc(), Quest.id.desc())))


def period_key(period: str, now: datetime) -> str:
    """The period a moment falls in, in UTC: the date for daily quests, the ISO week for weekly ones."""
    moment = as_utc(now)
    if period == "daily":
        return moment.date().isoformat()
    if period == "weekly":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return "once"


def period_ends(quest: Quest, now: datetime) -> datetime | None:
    """When the member's current attempt at `quest` ends: the next UTC midnight (daily), the next
    Monday 00:00 UTC (weekly), or the quest's own end, whichever comes first."""
    moment = as_utc(now)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=moment.tzinfo)
    ends = None
    if quest.period == "daily":
        ends = midnight + timedelta(days=1)
    elif quest.period == "weekly":
        ends = midnight + timedelta(days=7 - moment.weekday())
    if quest.ends_at is not None:
        quest_end = as_utc(quest.ends_at)
        ends = quest_end if ends is None else min(ends, quest_end)
    return ends


@dataclass(frozen=True)
class QuestRule:
    """What the event listeners need of an active quest: a plain copy, safe to keep across requests."""

    id: int
    title: str
    period: str
    objective: str
    target: int
    accuracy_percent: int | None
    task_type: str
    scope: str
    starts_at: datetime
    ends_at: datetime | None


# Quests change rarely but every accepted submission reads them. Each process keeps the active ones in
# memory; a version in Redis, changed after every quest write commits, tells all processes to reload.
QUEST_VERSION_KEY = "sapien:quests:version"
_quest_rules_cache: tuple[bytes, list[QuestRule]] | None = None


def _announce_quests_changed() -> None:
    from sapien.queue import redis_connection

    def bump() -> None:
        try:
            redis_connection().set(QUEST_VERSION_KEY, uuid4().hex)
        except RedisError:
            log.warning("quest cache version not bumped (Redis unavailable); listeners read quests from the database")

    after_commit(bump)


def _load_quest_rules() -> list[QuestRule]:
    quests = db.session.scalars(select(Quest).where(Quest.is_active.is_(True)).order_by(Quest.period, Quest.id))
    return [
        QuestRule(q.id, q.title, q.period, q.objective, q.target, q.accuracy_percent, q.task_type, q.scope,
                  as_utc(q.starts_at), as_utc(q.ends_at) if q.ends_at else None)
        for q in quests
    ]


def _quest_rules() -> list[QuestRule]:
    global _quest_rules_cache
    from sapien.queue import redis_connection

    try:
        connection = redis_connection()
        version = connection.get(QUEST_VERSION_KEY)
        if version is None:  # first use, or Redis was flushed: start a version (another process may win)
            connection.set(QUEST_VERSION_KEY, uuid4().hex, nx=True)
            version = connection.get(QUEST_VERSION_KEY)
    except RedisError:
        return _load_quest_rules()
    cached = _quest_rules_cache
    if cached is not None and cached[0] == version:
        return cached[1]
    rules = _load_quest_rules()
    _quest_rules_cache = (version, rules)
    return rules


def event_quests(now: datetime, objective: str, scope: str | None = None) -> list[QuestRule]:
    """The active quests for `objective` at `now`, as event listeners read them (from the process cache)."""
    moment = as_utc(now)
    return [
        rule
        for rule in _quest_rules()
        if rule.objective == objective
        and (scope is None or rule.scope == scope)
        and rule.starts_at <= moment
        and (rule.ends_at is None or rule.ends_at > moment)
    ]


def active_quests(now: datetime, objective: str | None = None, scope: str | None = None) -> list[Quest]:
    query = select(Quest).where(
        Quest.is_active.is_(True), Quest.starts_at <= now, or_(Quest.ends_at.is_(None), Quest.ends_at > now)
    )
    if objective:
        query = query.where(Quest.objective == objective)
    if scope:
        query = query.where(Quest.scope == scope)
    return list(db.session.scalars(query.order_by(Quest.period, Quest.id)))


# --- quests: progress ---------------------------------------------------------------------------


def _is_complete(quest: Quest, progress: int, gold_correct: int) -> bool:
    if progress < quest.target:
        return False
    if quest.objective == "gold_accuracy":
        return progress > 0 and 100 * gold_correct >= (quest.accuracy_percent or 100) * progress
    return True


def _advance(
    user_id: int,
    quests: Iterable[Quest],
    now: datetime,
    *,
    add: int = 0,
    correct: int = 0,
    at_least: int | None = None,
) -> list[Quest]:
    """Move the member's progress on `quests` in their current period (one statement for all of them);
    returns the quests this call completed."""
    quests = list(quests)
    if not quests:
        return []
    session = db.session
    start = at_least if at_least is not None else add
    statement = dialect_insert(QuestProgress).values(
        [
            dict(quest_id=q.id, user_id=user_id, period_key=period_key(q.period, now), progress=start, gold_correct=correct, updated_at=now)
            for q in quests
        ]
    )
    if at_least is not None:
        new_progress = case(
            (statement.excluded.progress > QuestProgress.progress, statement.excluded.progress), else_=QuestProgress.progress
        )
    else:
        new_progress = QuestProgress.progress + statement.excluded.progress
    statement = statement.on_conflict_do_update(
        index_elements=["quest_id", "user_id", "period_key"],
        set_={
            "progress": new_progress,
            "gold_correct": QuestProgress.gold_correct + statement.excluded.gold_correct,
            "updated_at": now,
        },
    ).returning(QuestProgress.id, QuestProgress.quest_id, QuestProgress.progress, QuestProgress.gold_correct, QuestProgress.completed_at)
    by_id = {q.id: q for q in quests}
    completed = []
    for row_id, quest_id, progress, gold_correct, completed_at in session.execute(statement).all():
        quest = by_id[quest_id]
        if completed_at is None and _is_complete(quest, progress, gold_correct):
            done = session.execute(
                update(QuestProgress)
                .where(QuestProgress.id == row_id, QuestProgress.completed_at.is_(None))
                .values(completed_at=now)
            ).rowcount
            if done:
                completed.append(quest)
    return completed


def _announce_completed(user_id: int, row: MemberProgress, quests: list[Quest], now: datetime) -> None:
    if not quests:
        return
    from sapien.notifications.service import notify

    row.quests_completed += len(quests)
    for quest in quests:
        notify(
            user_id,
            "quest_complete",
            {"quest": quest.title},
            link="/quests",
            key=f"quest:{quest.id}:{user_id}:{period_key(quest.period, now)}",
            now=now,
        )
        after_commit(lambda q=quest.id: events.quest_completed.send(None, user_id=user_id, quest_id=q, now=now))
    from sapien.progression import live

    live.mark_quests_changed(user_id)
    live.mark_quests_completed(user_id, [quest.title for quest in quests])


def _advance_guild(user_id: int, quests: Iterable[Quest], now: datetime, *, add: int) -> tuple[int | None, list[Quest]]:
    """Move the collective progress of the member's guild on the guild-scope `quests` in their current
    period (one statement for all of them, as `_advance` does for a member). Returns the guild's id and
    the quests this call completed for the guild; a member in no guild moves nothing."""
    quests = list(quests)
    if not quests:
        return None, []
    from sapien.guilds.service import guild_id_of

    guild_id = guild_id_of(user_id)
    if guild_id is None:
        return None, []
    session = db.session
    statement = dialect_insert(GuildQuestProgress).values(
        [
            dict(quest_id=q.id, guild_id=guild_id, period_key=period_key(q.period, now), progress=add, gold_correct=0, updated_at=now)
            for q in quests
        ]
    )
    statement = statement.on_conflict_do_update(
        index_elements=["quest_id", "guild_id", "period_key"],
        set_={"progress": GuildQuestProgress.progress + statement.excluded.progress, "updated_at": now},
    ).returning(
        GuildQuestProgress.id,
        GuildQuestProgress.quest_id,
        GuildQuestProgress.progress,
        GuildQuestProgress.gold_correct,
        GuildQuestProgress.completed_at,
    )
    by_id = {q.id: q for q in quests}
    completed = []
    for row_id, quest_id, progress, gold_correct, completed_at in session.execute(statement).all():
        quest = by_id[quest_id]
        if completed_at is None and _is_complete(quest, progress, gold_correct):
            # Of several members finishing the period at once, only one marks it (and announces it).
            done = session.execute(
                update(GuildQuestProgress)
                .where(GuildQuestProgress.id == row_id, GuildQuestProgress.completed_at.is_(None))
                .values(completed_at=now)
            ).rowcount
            if done:
                completed.append(quest)
    return guild_id, completed


def _announce_guild_completed(actor_id: int, guild_id: int | None, quests: list[Quest], now: datetime) -> None:
    """Tell every current member of the guild that it finished `quests` (once per member and period)."""
    if guild_id is None or not quests:
        return
    from sapien.guilds.service import member_ids
    from sapien.notifications.service import notify

    members = member_ids(guild_id)
    for quest in quests:
        key = period_key(quest.period, now)
        for member_id in members:
            notify(
                member_id,
                "guild_quest_complete",
                {"quest": quest.title},
                link="/quests",
                key=f"guild-quest:{quest.id}:{guild_id}:{key}:{member_id}",
                now=now,
            )
    from sapien.progression import live

    live.mark_quests_changed(actor_id)


@dataclass(frozen=True)
class QuestCard:
    quest: Quest
    period_key: str
    progress: int
    gold_correct: int
    completed: bool
    claimed: bool
    claimable: bool
    ends_at: datetime | None = None
    # Guild quests: the progress shown is the member's guild's; no guild name means the member is in no
    # guild (the card then points to the guild directory and cannot be claimed).
    guild_name: str | None = None
    guild_slug: str | None = None

    @property
    def is_guild(self) -> bool:
        return self.quest.scope == "guild"

    @property
    def needs_guild(self) -> bool:
        return self.is_guild and self.guild_name is None

    @property
    def shown_progress(self) -> int:
        return min(self.progress, self.quest.target)

    @property
    def percent(self) -> int:
        return min(100, 100 * self.progress // self.quest.target) if self.quest.target else 100

    @property
    def accuracy(self) -> int | None:
        if self.quest.objective != "gold_accuracy" or not self.progress:
            return None
        return 100 * self.gold_correct // self.progress


def _claimable_guild_rows(user_id: int, guild_id: int, joined_at: datetime, quest_ids: list[int], current_keys: set[str]):
    """The guild's completed periods of `quest_ids` this member may still claim.

    Any current member of the guild may claim the current period, even one who joined after the guild
    completed it: they are in the guild now, and the reward is per member and period, so a member
    switching guilds still claims a period only once (their own `quest_progress` row is the gate).
    An earlier period (a daily quest finished yesterday) stays claimable only for members who were
    already in the guild when it was completed, so joining a guild never pays out its past.
    """
    claimed = (
        select(QuestProgress.id)
        .where(
            QuestProgress.quest_id == GuildQuestProgress.quest_id,
            QuestProgress.user_id == user_id,
            QuestProgress.period_key == GuildQuestProgress.period_key,
            QuestProgress.claimed_at.is_not(None),
        )
        .exists()
    )
    return select(GuildQuestProgress).where(
        GuildQuestProgress.guild_id == guild_id,
        GuildQuestProgress.quest_id.in_(quest_ids),
        GuildQuestProgress.completed_at.is_not(None),
        or_(GuildQuestProgress.period_key.in_(current_keys), GuildQuestProgress.completed_at >= joined_at),
        ~claimed,
    )


@dataclass
class _GuildQuestState:
    name: str
    slug: str
    current: dict[int, GuildQuestProgress]
    claimable: set[int]


def _guild_quest_state(user_id: int, quests: list[Quest], now: datetime) -> _GuildQuestState | None:
    """The member's guild's progress on guild `quests` this period and which of them the member can
    claim; None for a member in no guild."""
    if not quests:
        return None
    from sapien.guilds.service import guild_names, membership_of

    membership = membership_of(user_id)
    if membership is None:
        return None
    names = guild_names([membership.guild_id])
    if membership.guild_id not in names:
        return None
    name, slug = names[membership.guild_id]
    ids = [q.id for q in quests]
    keys = {period_key(q.period, now) for q in quests}
    by_quest = {q.id: period_key(q.period, now) for q in quests}
    rows = db.session.scalars(
        select(GuildQuestProgress).where(
            GuildQuestProgress.guild_id == membership.guild_id,
            GuildQuestProgress.quest_id.in_(ids),
            GuildQuestProgress.period_key.in_(keys),
        )
    ).all()
    current = {row.quest_id: row for row in rows if row.period_key == by_quest[row.quest_id]}
    claimable = {
        row.quest_id for row in db.session.scalars(_claimable_guild_rows(user_id, membership.guild_id, membership.joined_at, ids, keys))
    }
    return _GuildQuestState(name, slug, current, claimable)


def quest_cards(user_id: int, now: datetime) -> list[QuestCard]:
    """The active quests with the member's progress in the current period, plus any earlier period's
    completed-but-unclaimed progress (a daily quest finished yesterday can still be claimed). Guild
    quests show the member's guild's progress."""
    quests = active_quests(now)
    if not quests:
        return []
    rows = db.session.scalars(
        select(QuestProgress).where(
            QuestProgress.user_id == user_id,
            QuestProgress.quest_id.in_([q.id for q in quests]),
            or_(
                QuestProgress.period_key.in_({period_key(q.period, now) for q in quests}),
                and_(QuestProgress.completed_at.is_not(None), QuestProgress.claimed_at.is_(None)),
            ),
        )
    ).all()
    by_quest: dict[int, list[QuestProgress]] = {}
    for row in rows:
        by_quest.setdefault(row.quest_id, []).append(row)
    guild = _guild_quest_state(user_id, [q for q in quests if q.scope == "guild"], now)
    cards = []
    for quest in quests:
        key = period_key(quest.period, now)
        found = by_quest.get(quest.id, [])
        current = next((r for r in found if r.period_key == key), None)
        if quest.scope == "guild":
            shared = guild.current.get(quest.id) if guild else None
            cards.append(
                QuestCard(
                    quest=quest,
                    period_key=key,
                    progress=shared.progress if shared else 0,
                    gold_correct=0,
                    completed=bool(shared and shared.completed_at),
                    claimed=bool(current and current.claimed_at),
                    claimable=bool(guild and quest.id in guild.claimable),
                    ends_at=period_ends(quest, now),
                    guild_name=guild.name if guild else None,
                    guild_slug=guild.slug if guild else None,
                )
            )
            continue
        unclaimed = any(r.completed_at is not None and r.claimed_at is None for r in found)
        cards.append(
            QuestCard(
                quest=quest,
                period_key=key,
                progress=current.progress if current else 0,
                gold_correct=current.gold_correct if current else 0,
                completed=bool(current and current.completed_at),
                claimed=bool(current and current.claimed_at),
                claimable=unclaimed,
                ends_at=period_ends(quest, now),
            )
        )
    return cards


def claim_quest(user_id: int, quest_id: int, now: datetime) -> QuestProgress:
    """Pay a completed quest's rewards exactly once, whoever clicks how often or how fast."""
    quest = db.session.get(Quest, quest_id)
    if quest is None:
        raise LookupError(quest_id)
    if quest.scope == "guild":
        return _claim_guild_quest(user_id, quest, now)
    with unit_of_work() as session:
        row = session.scalars(
            select(QuestProgress)
            .where(
                QuestProgress.quest_id == quest_id,
                QuestProgress.user_id == user_id,
                QuestProgress.completed_at.is_not(None),
                QuestProgress.claimed_at.is_(None),
            )
            .order_by(QuestProgress.id.desc())
            .limit(1)
        ).first()
        if row is None:
            already = session.scalar(
                select(QuestProgress.id).where(
                    QuestProgress.quest_id == quest_id,
                    QuestProgress.user_id == user_id,
                    QuestProgress.period_key == period_key(quest.period, now),
                    QuestProgress.claimed_at.is_not(None),
                )
            )
            if already:
                raise QuestError(_l("You already claimed this quest's reward."))
            raise QuestError(_l("Finish the quest before claiming its reward."))
        # The conditional UPDATE is the gate: of two racing claims, only one changes the row.
        claimed = session.execute(
            update(QuestProgress)
            .where(QuestProgress.id == row.id, QuestProgress.claimed_at.is_(None))
            .values(claimed_at=now, updated_at=now)
        ).rowcount
        if not claimed:
            raise QuestError(_l("You already claimed this quest's reward."))
        _pay_quest_rewards(user_id, quest, row.id, now)
    from sapien.progression import live

    live.mark_quests_changed(user_id)
    session.refresh(row)
    return row


def _pay_quest_rewards(user_id: int, quest: Quest, progress_id: int, now: datetime) -> None:
    """Every reward of a claimed quest, each a posting keyed by the claimed progress row."""
    from sapien.ledger import service as ledger

    key = f"quest:{progress_id}"
    if quest.reward_points:
        ledger.credit(user_id, "points", quest.reward_points, kind="quest_reward", key=f"{key}:points", now=now, memo=quest.title)
    if quest.reward_xp:
        ledger.credit(user_id, "xp", quest.reward_xp, kind="quest_reward", key=f"{key}:xp", now=now, memo=quest.title)
    for number in range(quest.reward_freezes):
        grant_streak_freeze(user_id, key=f"{key}:freeze:{number}", now=now)
    if quest.reward_badge:
        award_badge(user_id, quest.reward_badge, now, reason=f"quest:{quest.id}", quiet_if_held=True)


def _claim_guild_quest(user_id: int, quest: Quest, now: datetime) -> QuestProgress:
    """A member's share of a guild quest their guild completed, paid once per member and period.

    The member's own `quest_progress` row for the guild's completed period is created (or found) with
    the guild's completion time, then claimed through the same conditional UPDATE gate and ledger keys
    as a member quest: of two racing claims, the second waits on the row and then changes nothing.
    For the member, a claimed guild quest counts as a quest completed (badges, `quest_completed`).
    """
    from sapien.guilds.service import membership_of

    quest_id = quest.id
    current_key = period_key(quest.period, now)
    with unit_of_work() as session:
        membership = membership_of(user_id)
        if membership is None:
            raise QuestError(_l("This is a guild quest: join a guild to claim its reward."))
        guild_row = session.scalars(
            _claimable_guild_rows(user_id, membership.guild_id, membership.joined_at, [quest_id], {current_key})
            .order_by(GuildQuestProgress.completed_at.desc(), GuildQuestProgress.id.desc())
            .limit(1)
        ).first()
        if guild_row is None:
            already = session.scalar(
                select(QuestProgress.id).where(
                    QuestProgress.quest_id == quest_id,
                    QuestProgress.user_id == user_id,
                    QuestProgress.period_key == current_key,
                    QuestProgress.claimed_at.is_not(None),
                )
            )
            if already:
                raise QuestError(_l("You already claimed this quest's reward."))
            raise QuestError(_l("Your guild has not finished this quest yet."))
        statement = dialect_insert(QuestProgress).values(
            quest_id=quest_id,
            user_id=user_id,
            period_key=guild_row.period_key,
            progress=guild_row.progress,
            gold_correct=0,
            completed_at=guild_row.completed_at,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["quest_id", "user_id", "period_key"],
            set_={"completed_at": func.coalesce(QuestProgress.completed_at, statement.excluded.completed_at), "updated_at": now},
        ).returning(QuestProgress.id)
        row_id = session.execute(statement).scalar_one()
        claimed = session.execute(
            update(QuestProgress)
            .where(QuestProgress.id == row_id, QuestProgress.completed_at.is_not(None), QuestProgress.claimed_at.is_(None))
            .values(claimed_at=now, updated_at=now)
        ).rowcount
        if not claimed:
            raise QuestError(_l("You already claimed this quest's reward."))
        # The member's counters row is locked before any balance (the order buying a freeze uses too).
        counters, before = _bump_progress(user_id, now, quests_completed=1)
        _pay_quest_rewards(user_id, quest, row_id, now)
        _award_rule_badges(user_id, counters, now, before=before)
        after_commit(lambda: events.quest_completed.send(None, user_id=user_id, quest_id=quest_id, now=now))
    from sapien.progression import live

    live.mark_quests_changed(user_id)
    return db.session.get(QuestProgress, row_id, populate_existing=True)


@dataclass(frozen=True)
class GuildQuestLine:
    """A guild quest as the guild page shows it: the guild's progress in the current period."""

    quest: Quest
    period_key: str
    progress: int
    completed: bool
    ends_at: datetime | None

    @property
    def shown_progress(self) -> int:
        return min(self.progress, self.quest.target)

    @property
    def percent(self) -> int:
        return min(100, 100 * self.progress // self.quest.target) if self.quest.target else 100


def guild_quest_lines(guild_id: int, now: datetime) -> list[GuildQuestLine]:
    """The active guild quests with this guild's progress in their current period."""
    quests = active_quests(now, scope="guild")
    if not quests:
        return []
    keys = {q.id: period_key(q.period, now) for q in quests}
    rows = db.session.scalars(
        select(GuildQuestProgress).where(
            GuildQuestProgress.guild_id == guild_id,
            GuildQuestProgress.quest_id.in_(list(keys)),
            GuildQuestProgress.period_key.in_(set(keys.values())),
        )
    ).all()
    current = {row.quest_id: row for row in rows if row.period_key == keys[row.quest_id]}
    lines = []
    for quest in quests:
        row = current.get(quest.id)
        lines.append(
            GuildQuestLine(
                quest=quest,
                period_key=keys[quest.id],
                progress=row.progress if row else 0,
                completed=bool(row and row.completed_at),
                ends_at=period_ends(quest, now),
            )
        )
    return lines


# --- event listeners ------------------------------------------------------------------------------


def _stats(row: MemberProgress) -> BadgeStats:
    return BadgeStats(
        level=row.level,
        labels_accepted=row.labels_accepted,
        gold_answered=row.gold_answered,
        gold_correct=row.gold_correct,
        reviews_completed=row.reviews_completed,
        quests_completed=row.quests_completed,
        guilds_joined=row.guilds_joined,
        longest_streak=row.longest_streak,
    )


def on_submission_accepted(_sender=None, *, user_id: int, task_type: str, now: datetime, **_ignored) -> None:
    """An accepted submission: an active day (streak), a label counted, quests and badge rules moved."""
    with unit_of_work():
        row, before = _bump_progress(user_id, now, labels_accepted=1)
        streak_moved = _record_activity(user_id, row, now)
        quests = [q for q in event_quests(now, "label_items") if q.task_type in ("", task_type)]
        completed = _advance(user_id, [q for q in quests if q.scope == "member"], now, add=1)
        if streak_moved:
            completed += _advance(user_id, event_quests(now, "streak_days", "member"), now, at_least=row.current_streak)
        _announce_completed(user_id, row, completed, now)
        guild_id, guild_completed = _advance_guild(user_id, [q for q in quests if q.scope == "guild"], now, add=1)
        _announce_guild_completed(user_id, guild_id, guild_completed, now)
        _award_rule_badges(user_id, row, now, before=before)
        streak_days = row.current_streak if streak_moved else 0
    from sapien.progression import live

    live.mark_quests_changed(user_id)
    live.mark_streak(user_id, streak_days)


def on_gold_answered(_sender=None, *, user_id: int, correct: bool, now: datetime, **_ignored) -> None:
    with unit_of_work():
        row, before = _bump_progress(user_id, now, gold_answered=1, gold_correct=1 if correct else 0)
        completed = _advance(user_id, event_quests(now, "gold_accuracy", "member"), now, add=1, correct=1 if correct else 0)
        _announce_completed(user_id, row, completed, now)
        _award_rule_badges(user_id, row, now, before=before)


def on_review_completed(
    _sender=None, *, reviewer_id: int, submission_id: int, author_id: int | None = None, outcome: str = "", now: datetime, **_ignored
) -> None:
    from sapien.notifications.service import notify

    with unit_of_work():
        row, before = _bump_progress(reviewer_id, now, reviews_completed=1)
        quests = event_quests(now, "reviews")
        completed = _advance(reviewer_id, [q for q in quests if q.scope == "member"], now, add=1)
        _announce_completed(reviewer_id, row, completed, now)
        guild_id, guild_completed = _advance_guild(reviewer_id, [q for q in quests if q.scope == "guild"], now, add=1)
        _announce_guild_completed(reviewer_id, guild_id, guild_completed, now)
        _award_rule_badges(reviewer_id, row, now, before=before)
        if author_id and author_id != reviewer_id:
            notify(
                author_id,
                "review_result",
                {"outcome": outcome},
                key=f"review:{submission_id}:{reviewer_id}",
                now=now,
            )


def on_guild_joined(_sender=None, *, user_id: int, now: datetime, **_ignored) -> None:
    with unit_of_work():
        row, before = _bump_progress(user_id, now, guilds_joined=1)
        completed = _advance(user_id, event_quests(now, "join_guild", "member"), now, at_least=1)
        _announce_completed(user_id, row, completed, now)
        _award_rule_badges(user_id, row, now, before=before)


def on_ledger_entry_posted(
    _sender=None, *, user_id: int, currency: str, now: datetime, amount: int | None = None, balance_after: int | None = None, **_ignored
) -> None:
    """Balances moved: refresh the nav in this request; XP moved: record any level reached."""
    from sapien.ledger import service as ledger
    from sapien.progression import live

    live.mark_status_changed(user_id)
    if currency != "xp":
        return
    if balance_after is not None and amount is not None and level_for_xp(balance_after) == level_for_xp(balance_after - amount):
        return  # this entry crossed no level boundary: nothing to record, no query needed
    xp = ledger.balance(user_id, "xp")
    recorded = db.session.scalar(select(MemberProgress.level).where(MemberProgress.user_id == user_id)) or 1
    if level_for_xp(xp) <= recorded:
        return  # the common case: no level crossed, no transaction needed
    reached = record_level_ups(user_id, xp, now)
    if reached:
        live.mark_level_up(user_id, max(reached))


# --- badges -------------------------------------------------------------------------------------


def _award_rule_badges(user_id: int, row: MemberProgress, now: datetime, before: BadgeStats | None = None) -> list[str]:
    """Award the rule badges the member's counters earn. With `before` (the stats before this event),
    only rules this event newly satisfied are considered, which costs no query at all in the common
    case; without it (a sync), every earned badge not yet held is awarded. A revoked badge is never
    brought back by a rule."""
    earned = earned_by_rules(_stats(row))
    if before is not None:
        already = set(earned_by_rules(before))
        earned = [slug for slug in earned if slug not in already]
    if not earned:
        return []
    held = set(db.session.scalars(select(BadgeAward.badge_slug).where(BadgeAward.user_id == user_id)))
    awarded = []
    for slug in earned:
        if slug not in held and award_badge(user_id, slug, now, quiet_if_held=True) is not None:
            awarded.append(slug)
    return awarded


def award_badge(
    user_id: int,
    slug: str,
    now: datetime,
    *,
    awarded_by: int | None = None,
    reason: str = "",
    quiet_if_held: bool = False,
) -> BadgeAward | None:
    """Award a badge once. A rule or reward (`quiet_if_held`) re-awarding a held badge does nothing;
    a moderator doing so gets an error. A moderator may restore a revoked badge."""
    badge = get_badge(slug)
    if badge is None:
        raise BadgeError(_l("There is no such badge."), "badge")
    if awarded_by is not None and not (reason or "").strip():
        raise BadgeError(_l("Give a reason for awarding this badge."), "reason")
    from sapien.notifications.service import notify

    with unit_of_work() as session:
        award_id = session.execute(
            dialect_insert(BadgeAward)
            .values(user_id=user_id, badge_slug=slug, awarded_at=now, awarded_by=awarded_by, reason=(reason or "").strip())
            .on_conflict_do_nothing(index_elements=["user_id", "badge_slug"])
            .returning(BadgeAward.id)
        ).scalar()
        if award_id is None:
            award = session.scalars(
                select(BadgeAward)
                .where(BadgeAward.user_id == user_id, BadgeAward.badge_slug == slug)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            if award.revoked_at is None or awarded_by is None:
                if quiet_if_held:
                    return None
                raise BadgeError(_l("This member already holds that badge."), "badge")
            award.revoked_at = award.revoked_by = award.revoke_reason = None
            award.awarded_at, award.awarded_by, award.reason = now, awarded_by, reason.strip()
            mint = session.scalar(select(MintRequest).where(MintRequest.award_id == award.id))
            if mint is not None and mint.state == "cancelled":
                mint.state, mint.updated_at = "pending", now
        else:
            award = session.get(BadgeAward, award_id)
            session.add(MintRequest(award_id=award.id, user_id=user_id, badge_slug=slug, state="pending", created_at=now, updated_at=now))
        if awarded_by is not None:
            from sapien.moderation.service import record

            record(awarded_by, "badge.award", f"badge_award:{award.id}", reason.strip(), now)
        notify(user_id, "badge", {"badge": slug}, link=f"/badges/{slug}", key=f"badge:{award.id}:{now.isoformat()}", now=now)
        session.flush()
        awarded_id = award.id
        after_commit(lambda: events.badge_awarded.send(None, user_id=user_id, badge_slug=slug, award_id=awarded_id, now=now))
    return award


def revoke_badge(award_id: int, *, actor_id: int, reason: str, now: datetime) -> BadgeAward:
    if not (reason or "").strip():
        raise BadgeError(_l("Give a reason for revoking this badge."), "reason")
    from sapien.moderation.service import record
    from sapien.notifications.service import notify

    with unit_of_work() as session:
        award = session.get(BadgeAward, award_id, with_for_update=True)
        if award is None:
            raise LookupError(award_id)
        if award.revoked_at is not None:
            raise BadgeError(_l("That badge is already revoked."))
        award.revoked_at, award.revoked_by, award.revoke_reason = now, actor_id, reason.strip()
        session.execute(
            update(MintRequest)
            .where(MintRequest.award_id == award_id, MintRequest.state == "pending")
            .values(state="cancelled", updated_at=now)
        )
        record(actor_id, "badge.revoke", f"badge_award:{award.id}", reason.strip(), now)
        notify(award.user_id, "badge_revoked", {"badge": award.badge_slug}, now=now)
    return award


@dataclass(frozen=True)
class HeldBadge:
    badge: Badge
    award: BadgeAward
    mint_state: str | None


def member_badges(user_id: int) -> list[HeldBadge]:
    rows = db.session.execute(
        select(BadgeAward, MintRequest.state)
        .outerjoin(MintRequest, MintRequest.award_id == BadgeAward.id)
        .where(BadgeAward.user_id == user_id, BadgeAward.revoked_at.is_(None))
        .order_by(BadgeAward.awarded_at.desc())
    ).all()
    return [HeldBadge(BADGES[a.badge_slug], a, state) for a, state in rows if a.badge_slug in BADGES]


def _member_count() -> int:
    from sapien.accounts.service import count_members

    return count_members()


@dataclass(frozen=True)
class GalleryBadge:
    badge: Badge
    holders: int
    percent: float  # 0..1 of members holding it
    held: bool


def badge_gallery(viewer_id: int | None) -> list[GalleryBadge]:
    counts = dict(
        db.session.execute(
            select(BadgeAward.badge_slug, func.count(BadgeAward.id))
            .where(BadgeAward.revoked_at.is_(None))
            .group_by(BadgeAward.badge_slug)
        ).tuples().all()
    )
    held = set()
    if viewer_id is not None:
        held = set(
            db.session.scalars(
                select(BadgeAward.badge_slug).where(BadgeAward.user_id == viewer_id, BadgeAward.revoked_at.is_(None))
            )
        )
    members = max(_member_count(), 1)
    return [
        GalleryBadge(badge, counts.get(badge.slug, 0), counts.get(badge.slug, 0) / members, badge.slug in held)
        for badge in CATALOGUE
    ]


@dataclass
class BadgePage:
    badge: Badge
    holders: int
    percent: float
    recent_holders: list = field(default_factory=list)  # (username, display_name, awarded_at)
    viewer_award: BadgeAward | None = None
    viewer_mint_state: str | None = None


def badge_page(slug: str, viewer_id: int | None, limit: int = 20, include_hidden: bool = False) -> BadgePage | None:
    """A badge with its rarity and latest holders. Members hidden from public boards are listed only
    to moderators (`include_hidden`) and to themselves; they always count towards rarity."""
    from sapien.accounts.models import User

    badge = get_badge(slug)
    if badge is None:
        return None
    active = and_(BadgeAward.badge_slug == slug, BadgeAward.revoked_at.is_(None))
    holders = db.session.scalar(select(func.count(BadgeAward.id)).where(active)) or 0
    recent = db.session.execute(
        select(User.username, User.display_name, BadgeAward.awarded_at, BadgeAward.id)
        .join(User, User.id == BadgeAward.user_id)
        .where(active, User.is_banned.is_(False))
        .where(true() if include_hidden else or_(User.hide_from_boards.is_(False), User.id == viewer_id))
        .order_by(BadgeAward.awarded_at.desc())
        .limit(limit)
    ).all()
    page = BadgePage(badge, holders, holders / max(_member_count(), 1), [tuple(r) for r in recent])
    if viewer_id is not None:
        found = db.session.execute(
            select(BadgeAward, MintRequest.state)
            .outerjoin(MintRequest, MintRequest.award_id == BadgeAward.id)
            .where(BadgeAward.user_id == viewer_id, BadgeAward.badge_slug == slug, BadgeAward.revoked_at.is_(None))
        ).first()
        if found:
            page.viewer_award, page.viewer_mint_state = found
    return page


def pending_mint_requests(limit: int = 100) -> list[MintRequest]:
    return list(
        db.session.scalars(select(MintRequest).where(MintRequest.state == "pending").order_by(MintRequest.id).limit(limit))
    )


# --- read models for the profile and the dashboard ---------------------------------------------


@dataclass
class ProfileProgress:
    progress: LevelProgress
    streak: StreakState
    badges: list[HeldBadge]
    xp_days: list[XpDay]
    level_ups: list[LevelUp]
    labels_accepted: int
    show_activity: bool

    @property
    def xp_days_max(self) -> int:
        return max([d.xp for d in self.xp_days] + [1])


def profile_progress(user_id: int, viewer_id: int | None, now: datetime) -> ProfileProgress:
    """What the public profile shows. Members hidden from boards keep a profile, but their activity
    (XP history, level-up dates, streak) is shown only to themselves."""
    from sapien.accounts.service import get_user
    from sapien.ledger import service as ledger

    user = get_user(user_id)
    show_activity = not (user and user.hide_from_boards) or viewer_id == user_id
    row = db.session.get(MemberProgress, user_id)
    return ProfileProgress(
        progress=level_progress(ledger.balance(user_id, "xp")),
        streak=streak_state(user_id, now),
        badges=member_badges(user_id),
        xp_days=xp_history(user_id, now) if show_activity else [],
        level_ups=level_history(user_id, 10) if show_activity else [],
        labels_accepted=row.labels_accepted if row else 0,
        show_activity=show_activity,
    )


@dataclass
class DashboardProgress:
    streak: StreakState
    multiplier: Decimal
    quests: list[QuestCard]


def dashboard_progress(user_id: int, now: datetime) -> DashboardProgress:
    streak = streak_state(user_id, now)
    per_day = Decimal(_config("STREAK_BONUS_PER_DAY_PERCENT", 5)) / 100
    cap = Decimal(_config("STREAK_MULTIPLIER_CAP_PERCENT", 150)) / 100
    multiplier = max(Decimal(1), min(cap, Decimal(1) + per_day * max(0, streak.current - 1)))
    return DashboardProgress(streak=streak, multiplier=multiplier, quests=quest_cards(user_id, now))


def sync_member(user_id: int, now: datetime) -> list[int]:
    """Bring a member's recorded levels and rule badges up to date with the ledger and their counters
    (a reconciliation for events that were lost, e.g. XP posted while listeners were not connected)."""
    from sapien.ledger import service as ledger

    reached = record_level_ups(user_id, ledger.balance(user_id, "xp"), now)
    with unit_of_work():
        _award_rule_badges(user_id, _progress_row(user_id, now), now)
    return reached


def enqueue_member_syncs(batch: int = 500) -> int:
    """Enqueue `sync_member_progress` for every member, one deterministic job id each."""
    from sapien.accounts.models import User
    from sapien.queue import enqueue_once

    count, last_id = 0, 0
    while True:
        ids = db.session.scalars(select(User.id).where(User.id > last_id).order_by(User.id).limit(batch)).all()
        if not ids:
            return count
        for user_id in ids:
            enqueue_once("jobs.progression.sync_member_progress", user_id, job_id=f"progression-sync-{user_id}")
            count += 1
        last_id = ids[-1]
