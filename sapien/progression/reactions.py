"""Progression's reactions to other areas' events (connected in `sapien.listeners`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from sapien import events
from sapien.database import after_commit, unit_of_work
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.notifications.service import notify
from sapien.progression.awards import award_badge, award_rule_badges
from sapien.progression.levels import bump_labels_accepted, bump_progress, level_for_xp, record_level_ups
from sapien.progression.models import (
    MemberProgress,
)
from sapien.progression.quest_progress import (
    advance,
    advance_guild,
    announce_completed,
    announce_guild_completed,
    event_quests,
)
from sapien.progression.streaks import STREAK_MILESTONES, record_activity


def on_answers_paid(_sender=None, *, payouts: list[dict], now: datetime, **_ignored) -> None:
    """A settlement batch paid verified answers: for each member (`user_id`, `answers`, `task_types`
    {task type: count}, `answered_at`) the labels are counted, the days they were given are active days
    (streak), label quests and badge rules moved. One transaction for the batch; the members' progress rows
    are bumped in one statement first, in member order."""
    with unit_of_work():
        bumped = bump_labels_accepted({payout["user_id"]: payout["answers"] for payout in payouts}, now)
        for payout in sorted(payouts, key=lambda payout: payout["user_id"]):
            row, before = bumped[payout["user_id"]]
            _react_to_paid_answers(row, before, payout["answers"], payout["task_types"], payout["answered_at"], now)


def _react_to_paid_answers(row, before, answers: int, task_types: dict[str, int], answered_at: list[datetime], now: datetime) -> None:
    user_id = row.user_id
    streak_moved = False
    for moment in sorted(answered_at):
        streak_moved = record_activity(user_id, row, moment) or streak_moved
    quests = event_quests(now, "label_items")
    # A quest for one task type counts that type's answers; one for any type counts them all.
    by_count: dict[int, list] = {}
    for quest in quests:
        counted = answers if quest.task_type == "" else task_types.get(quest.task_type, 0)
        if counted:
            by_count.setdefault(counted, []).append(quest)
    completed = []
    for counted, counted_quests in sorted(by_count.items()):
        completed += advance(user_id, [q for q in counted_quests if q.scope == "member"], now, add=counted)
    if streak_moved:
        completed += advance(user_id, event_quests(now, "streak_days", "member"), now, at_least=row.current_streak)
        days = row.current_streak
        if days in STREAK_MILESTONES:
            # Answers are paid in a job, which no response carries a toast from: the bell tells the member.
            notify(user_id, "streak_milestone", {"days": days}, link="/dashboard", key=f"streak:{user_id}:{row.last_active_day}", now=now)
        after_commit(lambda: events.streak_extended.send(None, user_id=user_id, days=days, now=now))
    announce_completed(user_id, row, completed, now)
    for counted, counted_quests in sorted(by_count.items()):
        guild_id, guild_completed = advance_guild(user_id, [q for q in counted_quests if q.scope == "guild"], now, add=counted)
        announce_guild_completed(user_id, guild_id, guild_completed, now)
    award_rule_badges(user_id, row, now, before=before)
    after_commit(lambda: events.quests_moved.send(None, user_id=user_id))


def on_gold_answered(_sender=None, *, user_id: int, correct: bool, now: datetime, **_ignored) -> None:
    with unit_of_work():
        row, before = bump_progress(user_id, now, gold_answered=1, gold_correct=1 if correct else 0)
        completed = advance(user_id, event_quests(now, "gold_accuracy", "member"), now, add=1, correct=1 if correct else 0)
        announce_completed(user_id, row, completed, now)
        award_rule_badges(user_id, row, now, before=before)


def on_review_completed(
    _sender=None, *, reviewer_id: int, submission_id: int, author_id: int | None = None, outcome: str = "", now: datetime, **_ignored
) -> None:

    with unit_of_work():
        row, before = bump_progress(reviewer_id, now, reviews_completed=1)
        quests = event_quests(now, "reviews")
        completed = advance(reviewer_id, [q for q in quests if q.scope == "member"], now, add=1)
        announce_completed(reviewer_id, row, completed, now)
        guild_id, guild_completed = advance_guild(reviewer_id, [q for q in quests if q.scope == "guild"], now, add=1)
        announce_guild_completed(reviewer_id, guild_id, guild_completed, now)
        award_rule_badges(reviewer_id, row, now, before=before)
        if author_id and author_id != reviewer_id:
            notify(
                author_id,
                "review_result",
                {"outcome": outcome},
                key=f"review:{submission_id}:{reviewer_id}",
                now=now,
            )


def on_arena_tier_reached(_sender=None, *, user_id: int, tier: str, now: datetime, **_ignored) -> None:
    """The arena's rank tiers from silver up carry a badge (never awarded twice)."""
    if tier in ("silver", "gold", "diamond"):
        award_badge(user_id, f"arena-{tier}", now, quiet_if_held=True)


def on_match_finished(
    _sender=None, *, user_ids: list[int], rated: bool, now: datetime, winner_ids: list[int] | None = None, **_ignored
) -> None:
    """A rated arena match counts for its players' arena quests and badges; a match flagged for fair play
    (unrated when it finished) does not."""
    if not rated:
        return
    winners = set(winner_ids or [])
    for user_id in sorted(set(user_ids)):
        won = 1 if user_id in winners else 0
        with unit_of_work():
            row, before = bump_progress(user_id, now, arena_matches=1, arena_wins=won)
            completed = advance(user_id, event_quests(now, "arena_matches", "member"), now, add=1)
            if won:
                completed += advance(user_id, event_quests(now, "arena_wins", "member"), now, add=1)
            announce_completed(user_id, row, completed, now)
            award_rule_badges(user_id, row, now, before=before)
        after_commit(lambda user_id=user_id: events.quests_moved.send(None, user_id=user_id))


def on_guild_joined(_sender=None, *, user_id: int, now: datetime, **_ignored) -> None:
    with unit_of_work():
        row, before = bump_progress(user_id, now, guilds_joined=1)
        completed = advance(user_id, event_quests(now, "join_guild", "member"), now, at_least=1)
        announce_completed(user_id, row, completed, now)
        award_rule_badges(user_id, row, now, before=before)


def on_ledger_entry_posted(
    _sender=None, *, user_id: int, currency: str, now: datetime, amount: int | None = None, balance_after: int | None = None, **_ignored
) -> None:
    """XP moved: record any level reached (`level_reached` tells the web layer)."""
    if currency != "xp":
        return
    if balance_after is not None and amount is not None and level_for_xp(balance_after) == level_for_xp(balance_after - amount):
        return  # this entry crossed no level boundary: nothing to record, no query needed
    xp = ledger.balance(user_id, "xp")
    recorded = db.session.scalar(select(MemberProgress.level).where(MemberProgress.user_id == user_id)) or 1
    if level_for_xp(xp) <= recorded:
        return  # the common case: no level crossed, no transaction needed
    record_level_ups(user_id, xp, now)
