"""Reputation: a member's 0–1000 score, its history and decay, and who may review.

Reputation
----------
Every member has a score from 0 to 1000 (500 for a new member). Each signal about the quality of
their work moves it a step toward 1000 (good) or 0 (bad): ``delta = round(rate × (target − score))``
(at least ±1), so the score behaves like a moving average of the member's recent quality signals and
never leaves its range. The rates per signal (``REPUTATION_RATES``): a gold answer 0.04, a review
outcome 0.05 (fix-and-accept counts half way), a planted review the reviewer judged 0.05, agreement
with an item's verified label 0.01. An overturned appeal gives back what the rejection took. Members
with no signal for ``REPUTATION_DECAY_AFTER_DAYS`` drift back toward 500 (see `decay_reputation`).
Each change is a `ReputationEvent` with a unique key, so the same cause moves a score once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, case, func, or_, select
from sqlalchemy.exc import IntegrityError

from sapien.accounts.models import ROLE_RANK, User
from sapien.database import built_once, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.labeling.models import Submission
from sapien.quality.models import Reputation, ReputationEvent

DEFAULT_REPUTATION = 500
MAX_REPUTATION = 1000
REPUTATION_RATES = {
    "gold": 0.04,
    "review": 0.05,
    "planted_review": 0.05,
    "agreement": 0.01,
}
def setting(key: str, default):
    return current_app.config.get(key, default)


def reputation_of(user_id: int) -> int:
    """A member's reputation, 0–1000 (500 until anything has moved it). One primary-key lookup of the score
    alone, or none when the row is loaded already: every answer asks (the review sampling's rate)."""
    session = db.session()
    loaded = session.identity_map.get(session.identity_key(Reputation, user_id))
    if loaded is not None:
        return loaded.score
    score = session.scalar(_score_statement(), {"reputation_user_id": user_id})
    return score if score is not None else DEFAULT_REPUTATION


@built_once
def _score_statement():
    return select(Reputation.score).where(Reputation.user_id == bindparam("reputation_user_id"))


def reputation_step(score: int, rate: float, good: bool) -> int:
    """How far one signal moves a score: `rate` of the way toward 1000 (good) or 0 (bad), at least one point."""
    target = MAX_REPUTATION if good else 0
    delta = round(rate * (target - score))
    if delta == 0 and score != target:
        delta = 1 if good else -1
    return delta


def apply_reputation(user_id: int, key: str, reason: str, now: datetime, *, delta: int | None = None, good: bool | None = None, rate: float | None = None) -> int | None:
    """Move a member's score once per `key` (inside the caller's unit of work). Returns the delta applied,
    or None when that key already moved it."""
    session = db.session
    # The lock's read replaces any copy the session holds: labeling reads the row with the answered lease (for
    # the judge), and a copy from before the lock may predate another transaction's move.
    row = session.get(Reputation, user_id, with_for_update=True, populate_existing=True)
    if row is None:
        try:
            with session.begin_nested():
                row = Reputation(user_id=user_id, score=DEFAULT_REPUTATION, updated_at=now)
                session.add(row)
        except IntegrityError:
            row = session.get(Reputation, user_id, with_for_update=True, populate_existing=True)
    score = row.score
    if delta is None:
        delta = reputation_step(score, rate if rate is not None else REPUTATION_RATES[reason], bool(good))
    new_score = max(0, min(MAX_REPUTATION, score + delta))
    # One statement records the move, or finds that this key already made it (the key is unique).
    recorded = session.execute(_record_event_statement(db.engine.dialect.name), {
        "event_user_id": user_id, "event_key": key[:128], "event_reason": reason, "event_delta": new_score - score,
        "event_score_after": new_score, "event_created_at": now,
    }).first()
    if recorded is None:
        return None
    row.score = new_score
    row.updated_at = now
    return new_score - score


@built_once
def _record_event_statement(dialect_name: str):
    return (
        dialect_insert(ReputationEvent, dialect_name)
        .values(user_id=bindparam("event_user_id"), key=bindparam("event_key"), reason=bindparam("event_reason"),
                delta=bindparam("event_delta"), score_after=bindparam("event_score_after"), created_at=bindparam("event_created_at"))
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(ReputationEvent.id)
    )


def record_reputation(user_id: int, *, key: str, reason: str, good: bool, now: datetime, rate: float | None = None) -> int | None:
    """Apply one quality signal to a member's reputation (once per key)."""
    with unit_of_work():
        return apply_reputation(user_id, key, reason, now, good=good, rate=rate)


def reputation_history(user_id: int, limit: int = 100) -> list[ReputationEvent]:
    return list(
        db.session.scalars(
            select(ReputationEvent).where(ReputationEvent.user_id == user_id).order_by(ReputationEvent.created_at.desc(), ReputationEvent.id.desc()).limit(limit)
        )
    )


def reputation_reason_labels() -> dict[str, str]:
    return {
        "gold": _l("Known-answer item"),
        "review": _l("Review of your work"),
        "agreement": _l("Agreement with the verified label"),
        "planted_review": _l("Check of your reviewing"),
        "appeal": _l("Appeal overturned"),
        "decay": _l("Inactivity drift toward 500"),
    }


@dataclass
class ReputationChart:
    width: int
    height: int
    points: str  # SVG polyline points
    first: int
    last: int
    low: int
    high: int


def reputation_chart(events_oldest_first: list[ReputationEvent], width: int = 600, height: int = 160) -> ReputationChart | None:
    """Polyline points for the score over the member's recent events (the y axis spans 0–1000)."""
    if not events_oldest_first:
        return None
    scores = [events_oldest_first[0].score_after - events_oldest_first[0].delta] + [e.score_after for e in events_oldest_first]
    step = width / max(1, len(scores) - 1)
    points = " ".join(f"{round(i * step, 1)},{round(height - score * height / MAX_REPUTATION, 1)}" for i, score in enumerate(scores))
    return ReputationChart(width, height, points, scores[0], scores[-1], min(scores), max(scores))


def gold_accuracy_by_member(min_total: int) -> dict[int, tuple[int, int]]:
    """user_id → (correct, total) gold answers, for members with at least `min_total` judged gold answers."""
    correct = func.sum(case((Submission.gold_correct.is_(True), 1), else_=0))
    total = func.count(Submission.id)
    rows = db.session.execute(
        select(Submission.user_id, correct, total)
        .where(Submission.is_gold.is_(True), Submission.gold_correct.is_not(None))
        .group_by(Submission.user_id)
        .having(total >= max(1, min_total))
    )
    return {user_id: (int(right or 0), int(count)) for user_id, right, count in rows}


def reviewer_min_reputation() -> int:
    return int(setting("REVIEWER_MIN_REPUTATION", 650))


def can_review(user_id: int) -> bool:
    """Reviewers by role, or members whose reputation reached REVIEWER_MIN_REPUTATION (650 by default)."""
    user = db.session.get(User, user_id)
    if user is None or user.is_banned:
        return False
    if ROLE_RANK.get(user.role, 0) >= ROLE_RANK["reviewer"]:
        return True
    return reputation_of(user_id) >= reviewer_min_reputation()


def reviewer_ids_query() -> Select:
    """Ids of everyone `can_review` admits, as one query (to ask about many reviews at once)."""
    reviewer_roles = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK["reviewer"]]
    score = func.coalesce(Reputation.score, DEFAULT_REPUTATION)
    return (
        select(User.id)
        .outerjoin(Reputation, Reputation.user_id == User.id)
        .where(User.is_banned.is_(False), or_(User.role.in_(reviewer_roles), score >= reviewer_min_reputation()))
    )


REPUTATION_DECAY_RATE = 0.1


def decay_reputation(now: datetime) -> int:
    """Members with no quality signal for REPUTATION_DECAY_AFTER_DAYS (30) drift a tenth of the way back
    toward 500, at most once per ISO week (the event key carries the week, so a second run that week does
    nothing). Decay is not activity: it leaves `updated_at` alone. Returns how many members moved."""
    days = int(setting("REPUTATION_DECAY_AFTER_DAYS", 30))
    cutoff = now - timedelta(days=days)
    year, week, _ = now.isocalendar()
    moved = 0
    with unit_of_work() as session:
        user_ids = list(session.scalars(select(Reputation.user_id).where(Reputation.updated_at < cutoff, Reputation.score != DEFAULT_REPUTATION).order_by(Reputation.user_id)))
        for user_id in user_ids:
            row = session.get(Reputation, user_id, with_for_update=True)
            gap = DEFAULT_REPUTATION - row.score
            delta = round(gap * REPUTATION_DECAY_RATE) or (1 if gap > 0 else -1)
            updated_at = row.updated_at
            applied = apply_reputation(user_id, f"decay:{user_id}:{year}-W{week:02d}", "decay", now, delta=delta)
            row.updated_at = updated_at
            moved += bool(applied)
    return moved
