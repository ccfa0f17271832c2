"""Quest progress: moving members' and guilds' progress as events arrive, and announcing completions.

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

from collections.abc import Iterable
from datetime import datetime
from uuid import uuid4

from redis.exceptions import RedisError
from sqlalchemy import case, or_, select, update

from sapien import events
from sapien.database import after_commit, as_utc, built_once, dialect_insert
from sapien.extensions import db
from sapien.guilds.membership import guild_id_of, member_ids
from sapien.notifications.service import notify
from sapien.periods import period_key
from sapien.progression.models import (
    GuildQuestProgress,
    MemberProgress,
    Quest,
    QuestProgress,
)
from sapien.progression.quests import QuestRule, quest_rules_cache, quest_version_key
from sapien.queue import redis_connection

_RULES_READ = "quest_rules_read"  # session.info: (the transaction that read them, the rules)


def _load_quest_rules() -> list[QuestRule]:
    quests = db.session.scalars(select(Quest).where(Quest.is_active.is_(True)).order_by(Quest.period, Quest.id))
    return [
        QuestRule(q.id, q.title, q.period, q.objective, q.target, q.accuracy_percent, q.task_type, q.scope,
                  as_utc(q.starts_at), as_utc(q.ends_at) if q.ends_at else None)
        for q in quests
    ]


def _quest_rules() -> list[QuestRule]:
    """The active quests' rules: from the process cache while the catalogue's version in Redis is unchanged,
    and read once per transaction (a settlement batch asks for every member it paid)."""
    session = db.session()
    transaction = session.get_transaction()
    read = session.info.get(_RULES_READ)
    if transaction is not None and read is not None and read[0] is transaction:
        return read[1]
    rules = _current_quest_rules()
    if transaction is not None:
        session.info[_RULES_READ] = (transaction, rules)
    return rules


def _current_quest_rules() -> list[QuestRule]:
    global quest_rules_cache

    try:
        connection = redis_connection()
        version = connection.get(quest_version_key())
        if version is None:  # first use, or Redis was flushed: start a version (another process may win)
            connection.set(quest_version_key(), uuid4().hex, nx=True)
            version = connection.get(quest_version_key())
    except RedisError:
        return _load_quest_rules()
    cached = quest_rules_cache
    if cached is not None and cached[0] == version:
        return cached[1]
    rules = _load_quest_rules()
    quest_rules_cache = (version, rules)
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


def advance(
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
    return _advance_rows(QuestProgress, {"user_id": user_id}, list(quests), now, add=add, correct=correct, at_least=at_least)


def _advance_rows(model, owner: dict, quests: list[Quest], now: datetime, *, add: int, correct: int = 0,
                  at_least: int | None = None) -> list[Quest]:
    """The one upsert behind `advance` (a member's `QuestProgress` rows) and `advance_guild` (a guild's
    `GuildQuestProgress` rows): add to each row's progress (or raise it to `at_least`) in the current
    period, then mark the rows it completed, each by a conditional UPDATE so of several racing
    callers only one completes (and announces) a row. Returns the quests this call completed."""
    if not quests:
        return []
    session = db.session
    start = at_least if at_least is not None else add
    rows = [
        dict(quest_id=q.id, **owner, period_key=period_key(q.period, now), progress=start, gold_correct=correct, updated_at=now)
        for q in quests
    ]
    statement = _advance_statement(model, tuple(owner), at_least is not None, session.get_bind().dialect.name)
    by_id = {q.id: q for q in quests}
    completed = []
    # On the session's connection: the ORM's bulk-insert path would cost more than the statement itself.
    for row_id, quest_id, progress, gold_correct, completed_at in session.connection().execute(statement, rows).all():
        quest = by_id[quest_id]
        if completed_at is None and _is_complete(quest, progress, gold_correct):
            done = session.execute(
                update(model).where(model.id == row_id, model.completed_at.is_(None)).values(completed_at=now)
            ).rowcount
            if done:
                completed.append(quest)
    return completed


@built_once
def _advance_statement(model, owner_columns: tuple[str, ...], raise_to_at_least: bool, dialect_name: str):
    """`_advance_rows`' upsert, run with one row of values per quest (a settlement batch runs it for every
    member it paid)."""
    statement = dialect_insert(model, dialect_name)
    if raise_to_at_least:
        new_progress = case((statement.excluded.progress > model.progress, statement.excluded.progress), else_=model.progress)
    else:
        new_progress = model.progress + statement.excluded.progress
    return statement.on_conflict_do_update(
        index_elements=["quest_id", *owner_columns, "period_key"],
        set_={"progress": new_progress, "gold_correct": model.gold_correct + statement.excluded.gold_correct,
              "updated_at": statement.excluded.updated_at},
    ).returning(model.id, model.quest_id, model.progress, model.gold_correct, model.completed_at)


def announce_completed(user_id: int, row: MemberProgress, quests: list[Quest], now: datetime) -> None:
    if not quests:
        return

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
    after_commit(lambda: events.quests_moved.send(None, user_id=user_id))


def advance_guild(user_id: int, quests: Iterable[Quest], now: datetime, *, add: int) -> tuple[int | None, list[Quest]]:
    """Move the collective progress of the member's guild on the guild-scope `quests` in their current
    period (one statement for all of them, as `advance` does for a member). Returns the guild's id and
    the quests this call completed for the guild; a member in no guild moves nothing."""
    quests = list(quests)
    if not quests:
        return None, []
    guild_id = guild_id_of(user_id)
    if guild_id is None:
        return None, []
    return guild_id, _advance_rows(GuildQuestProgress, {"guild_id": guild_id}, quests, now, add=add)


def announce_guild_completed(actor_id: int, guild_id: int | None, quests: list[Quest], now: datetime) -> None:
    """Tell every current member of the guild that it finished `quests` (once per member and period)."""
    if guild_id is None or not quests:
        return

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
    after_commit(lambda: events.quests_moved.send(None, user_id=actor_id))
