"""A member's quest cards, claims (member and guild quests) and a guild's quest lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update

from sapien import events
from sapien.database import after_commit, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.guilds.membership import guild_names, membership_of
from sapien.ledger import service as ledger
from sapien.periods import period_key
from sapien.progression.awards import award_badge, award_rule_badges
from sapien.progression.errors import QuestError
from sapien.progression.levels import bump_progress
from sapien.progression.models import (
    GuildQuestProgress,
    Quest,
    QuestProgress,
)
from sapien.progression.quest_catalogue import hidden_from
from sapien.progression.quest_progress import active_quests
from sapien.progression.quests import period_ends
from sapien.progression.streaks import grant_streak_freeze


class _QuestProgressShown:
    """What a quest's progress bar shows: progress capped at the target, and the share done."""

    quest: Quest
    progress: int

    @property
    def shown_progress(self) -> int:
        return min(self.progress, self.quest.target)

    @property
    def percent(self) -> int:
        return min(100, 100 * self.progress // self.quest.target) if self.quest.target else 100


@dataclass(frozen=True)
class QuestCard(_QuestProgressShown):
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
    # The quest has ended, but the member finished it in time: the card stays until they claim it.
    ended: bool = False

    @property
    def is_guild(self) -> bool:
        return self.quest.scope == "guild"

    @property
    def needs_guild(self) -> bool:
        return self.is_guild and self.guild_name is None

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


def quest_cards(user_id: int, now: datetime, *, can_review: bool = True) -> list[QuestCard]:
    """The active quests with the member's progress in the current period, plus any earlier period's
    completed-but-unclaimed progress (a daily quest finished yesterday can still be claimed, even when
    the quest itself has ended, as yesterday's rotated catalogue quests have). Guild quests show the
    member's guild's progress. Catalogue quests for reviewers are left out unless `can_review`."""
    quests = [q for q in active_quests(now) if not hidden_from(q, can_review)]
    active_ids = [q.id for q in quests]
    rows = db.session.scalars(
        select(QuestProgress).where(
            QuestProgress.user_id == user_id,
            or_(
                and_(QuestProgress.quest_id.in_(active_ids), QuestProgress.period_key.in_({period_key(q.period, now) for q in quests})),
                and_(QuestProgress.completed_at.is_not(None), QuestProgress.claimed_at.is_(None)),
            ),
        )
    ).all()
    by_quest: dict[int, list[QuestProgress]] = {}
    for row in rows:
        by_quest.setdefault(row.quest_id, []).append(row)
    ended = _ended_quests(set(by_quest) - set(active_ids), now)
    if not quests and not ended:
        return []
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
    for quest in ended:
        done = next(r for r in by_quest[quest.id] if r.completed_at is not None and r.claimed_at is None)
        cards.append(
            QuestCard(quest=quest, period_key=done.period_key, progress=done.progress, gold_correct=done.gold_correct,
                      completed=True, claimed=False, claimable=True, ended=True)
        )
    return cards


def _ended_quests(quest_ids: set[int], now: datetime) -> list[Quest]:
    """Of the quests the member completed and has not claimed, those that have ended since (member quests
    still switched on: a moderator switching a quest off takes it off every page)."""
    if not quest_ids:
        return []
    return list(
        db.session.scalars(
            select(Quest)
            .where(Quest.id.in_(quest_ids), Quest.scope == "member", Quest.is_active.is_(True), Quest.ends_at <= now)
            .order_by(Quest.ends_at.desc(), Quest.id)
        )
    )


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
    after_commit(lambda: events.quests_moved.send(None, user_id=user_id))
    session.refresh(row)
    return row


def _pay_quest_rewards(user_id: int, quest: Quest, progress_id: int, now: datetime) -> None:
    """Every reward of a claimed quest, each a posting keyed by the claimed progress row."""

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
        counters, before = bump_progress(user_id, now, quests_completed=1)
        _pay_quest_rewards(user_id, quest, row_id, now)
        award_rule_badges(user_id, counters, now, before=before)
        after_commit(lambda: events.quest_completed.send(None, user_id=user_id, quest_id=quest_id, now=now))
    after_commit(lambda: events.quests_moved.send(None, user_id=user_id))
    return db.session.get(QuestProgress, row_id, populate_existing=True)


@dataclass(frozen=True)
class GuildQuestLine(_QuestProgressShown):
    """A guild quest as the guild page shows it: the guild's progress in the current period."""

    quest: Quest
    period_key: str
    progress: int
    completed: bool
    ends_at: datetime | None


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
