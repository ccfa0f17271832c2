"""Quests: definitions (create, update, validate) and the cached rules that events look up.

Quests
------
Moderators define daily, weekly and one-off (seasonal) quests. Progress rows are keyed by period:
the UTC date ("2026-11-22") for daily quests, the ISO week ("2026-W47") for weekly ones and "once"
for one-off quests, so a new day or ISO week starts from zero without any job. Progress moves on
events; a completed quest is claimed once: the claim is a conditional UPDATE of the progress row and
every reward is a ledger posting with a key derived from that row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from sqlalchemy import select

from sapien.database import after_commit, as_utc, unit_of_work
from sapien.extensions import db
from sapien.progression.badges import BADGES
from sapien.progression.errors import QuestError
from sapien.progression.levels import log, setting
from sapien.progression.models import (
    QUEST_OBJECTIVES,
    QUEST_PERIODS,
    QUEST_SCOPES,
    GuildQuestProgress,
    Quest,
    QuestProgress,
)
from sapien.queue import redis_connection
from sapien.redis_keys import redis_key

MAX_TARGETS = {"daily": 1_000, "weekly": 5_000, "once": 100_000}
MAX_STREAK_TARGET = 3_650
MAX_REWARD = 1_000_000
OBJECTIVE_LABELS = {
    "label_items": _l("Label items"),
    "gold_accuracy": _l("Gold accuracy"),
    "reviews": _l("Complete reviews"),
    "streak_days": _l("Keep a streak"),
    "join_guild": _l("Join a guild"),
    "arena_matches": _l("Play arena matches"),
    "arena_wins": _l("Win arena matches"),
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
        most *= max(1, int(setting("GUILD_MAX_MEMBERS", 50)))
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
        announce_quests_changed()
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
        announce_quests_changed()
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
def quest_version_key() -> str:
    return redis_key("quests:version")


quest_rules_cache: tuple[bytes, list[QuestRule]] | None = None


def announce_quests_changed() -> None:
    def bump() -> None:
        try:
            redis_connection().set(quest_version_key(), uuid4().hex)
        except RedisError:
            log.warning("quest cache version not bumped (Redis unavailable); listeners read quests from the database")

    after_commit(bump)
