"""A member's progression at a glance (profile, dashboard) and catching up a member's levels and badges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from sapien.accounts.models import User
from sapien.accounts.service import get_user
from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.failpoints import failpoint
from sapien.ledger import service as ledger
from sapien.progression.awards import HeldBadge, award_rule_badges, member_badges
from sapien.progression.levels import (
    LevelProgress,
    XpDay,
    level_history,
    level_progress,
    progress_row,
    record_level_ups,
    setting,
    xp_history,
)
from sapien.progression.models import (
    LevelUp,
    MemberProgress,
)
from sapien.progression.quest_cards import QuestCard, quest_cards
from sapien.progression.streaks import StreakState, streak_state
from sapien.queue import enqueue_once


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


def dashboard_progress(user_id: int, now: datetime, *, can_review: bool = True) -> DashboardProgress:
    streak = streak_state(user_id, now)
    per_day = Decimal(setting("STREAK_BONUS_PER_DAY_PERCENT", 5)) / 100
    cap = Decimal(setting("STREAK_MULTIPLIER_CAP_PERCENT", 150)) / 100
    multiplier = max(Decimal(1), min(cap, Decimal(1) + per_day * max(0, streak.current - 1)))
    return DashboardProgress(streak=streak, multiplier=multiplier, quests=quest_cards(user_id, now, can_review=can_review))


def sync_member(user_id: int, now: datetime) -> list[int]:
    """Bring a member's recorded levels and rule badges up to date with the ledger and their counters
    (a reconciliation for events that were lost, e.g. XP posted while listeners were not connected)."""

    reached = record_level_ups(user_id, ledger.balance(user_id, "xp"), now)
    failpoint("progression.sync.after-levels")
    with unit_of_work():
        award_rule_badges(user_id, progress_row(user_id, now), now)
    return reached


def enqueue_member_syncs(batch: int = 500) -> int:
    """Enqueue `sync_member_progress` for every member, one deterministic job id each."""

    count, last_id = 0, 0
    while True:
        ids = db.session.scalars(select(User.id).where(User.id > last_id).order_by(User.id).limit(batch)).all()
        if not ids:
            return count
        for user_id in ids:
            enqueue_once("jobs.progression.sync_member_progress", user_id, job_id=f"progression-sync-{user_id}")
            count += 1
        last_id = ids[-1]
