"""Escalation: no answer waits forever for a reviewer.

A real review still waiting (queued, or claimed and abandoned) ``REVIEW_ESCALATION_MINUTES`` (15) after it
was queued is *due*, and so is one that nobody could ever take: every member who may review
(`reputation.reviewer_ids_query`) is its author or answered the item too. A due review belongs to the
moderators at once: the pages read the rule itself (the reviewers' queue stops offering it, the
moderators' queue lists it, the member's history says "With a moderator"), so they are right without
writing on a GET and without a worker. The sweep `escalate_reviews` then records it: it stamps
`Review.escalated_at` with one conditional UPDATE (two sweeps at once stamp a review once) and sends every
moderator one notification per sweep that escalated anything, not one per review. A stamped review stays
the moderators' for good. The sweep runs as a periodic job (`jobs.quality.escalate_reviews`, a chain the
reconciler starts, like the lease sweep) and before a moderator takes a review.

Moderators take reviews from their queue and decide them with the same `reviews.decide_review`. A moderator
who answered the item may not review it either: another moderator must.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import aliased

from sapien.accounts.models import ROLE_RANK, User
from sapien.database import as_utc, retry_transaction, unit_of_work, utcnow
from sapien.extensions import db
from sapien.labeling.models import Submission, TaskPack
from sapien.notifications.service import notify
from sapien.quality.errors import NotAReviewer, OwnWork, ReviewError, ReviewNotFound
from sapien.quality.models import Review
from sapien.quality.reputation import reviewer_ids_query
from sapien.quality.reviews import escalation_cutoff, take_review
from sapien.queue import PendingWork, pending_work_source

ESCALATION_SWEEP_EVERY = timedelta(minutes=1)
MODERATORS_QUEUE_PATH = "/manage/reviews"  # the notification's link (services build no URLs from requests)


def _waiting(now: datetime):
    """A real review nobody is working on: queued, or claimed by someone whose time ran out."""
    return (
        Review.is_planted.is_(False)
        & ((Review.status == "queued") | ((Review.status == "claimed") & (Review.claim_expires_at <= now)))
    )


def _nobody_can_review():
    """True for a review (joined to its submission) that no one may take: every member who may review is
    its author or answered the item too."""
    answerer = aliased(Submission)
    answered_it = select(answerer.id).where(answerer.item_id == Submission.item_id, answerer.user_id == User.id)
    # Correlated by name: the outer submission is two levels up (auto-correlation looks one level up).
    others = reviewer_ids_query().where(User.id != Review.author_id, ~answered_it.correlate(Submission, User).exists())
    return ~others.exists()


def _due(now: datetime):
    """A waiting review past its time, or one nobody may take (a clause over Review joined to Submission)."""
    return _waiting(now) & ((Review.created_at <= escalation_cutoff(now)) | _nobody_can_review())


def _with_moderators(now: datetime):
    """An undecided real review in the moderators' queue: escalated, or due to be."""
    return Review.is_planted.is_(False) & (Review.status != "done") & (Review.escalated_at.is_not(None) | _due(now))


def moderator_ids() -> list[int]:
    roles = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK["moderator"]]
    return list(db.session.scalars(select(User.id).where(User.role.in_(roles), User.is_banned.is_(False)).order_by(User.id)))


@retry_transaction
def escalate_reviews(now: datetime) -> list[int]:
    """Record every due review as escalated and tell the moderators; returns the ids this call escalated
    (none when another sweep got there first)."""
    with unit_of_work() as session:
        candidates = list(
            session.scalars(
                select(Review.id)
                .join(Submission, Submission.id == Review.submission_id)
                .where(Review.escalated_at.is_(None), _due(now))
                .order_by(Review.id)
            )
        )
        if not candidates:
            return []
        # Conditional on escalated_at still being empty (a concurrent sweep escalates each review once) and
        # on the review still waiting (a reviewer may have taken it a moment ago).
        escalated = sorted(
            session.execute(
                update(Review)
                .where(Review.id.in_(candidates), Review.escalated_at.is_(None), _waiting(now))
                .values(escalated_at=now)
                .returning(Review.id)
                .execution_options(synchronize_session=False)
            ).scalars()
        )
        if escalated:
            _notify_moderators(escalated, now)
        return escalated


def _notify_moderators(review_ids: list[int], now: datetime) -> None:
    """One notification per moderator for the whole batch (keyed by its first review, escalated once)."""
    for moderator_id in moderator_ids():
        notify(
            moderator_id, "reviews_escalated", {"count": len(review_ids)}, link=MODERATORS_QUEUE_PATH,
            key=f"reviews-escalated:{review_ids[0]}:{moderator_id}", now=now,
        )


# --- the moderators' queue ------------------------------------------------------------------------

def _answered_item(user_id: int, item_id: int) -> bool:
    return db.session.scalar(select(exists().where(Submission.item_id == item_id, Submission.user_id == user_id))) or False


def _require_moderator(user_id: int) -> None:
    user = db.session.get(User, user_id)
    if user is None or user.is_banned or not user.has_role("moderator"):
        raise NotAReviewer(_l("Only moderators take reviews from the moderators' queue."))


@dataclass
class EscalatedReview:
    review: Review
    pack: TaskPack
    age: timedelta  # since the answer was queued for review
    held_by_other: bool  # another moderator holds it right now
    answered_by_me: bool  # the moderator looking answered the item (or wrote the answer): another must review it


def escalated_reviews(moderator_id: int, now: datetime, *, limit: int = 100) -> list[EscalatedReview]:
    """The moderators' queue, oldest first, as this moderator sees it."""
    answered = select(Submission.item_id).where(Submission.user_id == moderator_id)
    rows = db.session.execute(
        select(Review, TaskPack, Submission.item_id.in_(answered))
        .join(Submission, Submission.id == Review.submission_id)
        .join(TaskPack, TaskPack.id == Review.pack_id)
        .where(_with_moderators(now))
        .order_by(Review.created_at, Review.id)
        .limit(limit)
    )
    found = []
    for review, pack, answered_it in rows:
        held = review.status == "claimed" and review.reviewer_id != moderator_id and as_utc(review.claim_expires_at) > now
        found.append(EscalatedReview(review, pack, now - as_utc(review.created_at), held, bool(answered_it) or review.author_id == moderator_id))
    return found


def claim_escalated_review(review_id: int, moderator_id: int, now: datetime) -> Review:
    """A moderator takes one review from the moderators' queue (their current claim on it is returned)."""
    with unit_of_work() as session:
        _require_moderator(moderator_id)
        escalate_reviews(now)  # a due review is recorded as escalated before anyone takes it
        review = session.get(Review, review_id, populate_existing=True)
        if review is None or review.is_planted or review.escalated_at is None:
            raise ReviewNotFound(_l("There is no such review."))
        if review.author_id == moderator_id:
            raise OwnWork(_l("You cannot review your own work."))
        submission = session.get(Submission, review.submission_id)
        if _answered_item(moderator_id, submission.item_id):
            raise OwnWork(_l("You answered this item yourself, so another moderator must review it."))
        if review.status == "claimed" and review.reviewer_id == moderator_id and as_utc(review.claim_expires_at) > now:
            return review
        if review.status == "done":
            raise ReviewError(_l("This review has already been decided."))
        if not take_review(review, moderator_id, now):
            raise ReviewError(_l("Another moderator is working on this one."))
        return review


def escalated_submission_ids(submission_ids: list[int], now: datetime) -> set[int]:
    """Which of these submissions wait in the moderators' queue (for the member's history)."""
    if not submission_ids:
        return set()
    return set(
        db.session.scalars(
            select(Review.submission_id)
            .join(Submission, Submission.id == Review.submission_id)
            .where(Review.submission_id.in_(submission_ids), _with_moderators(now))
        )
    )


# --- the queue's health -------------------------------------------------------------------------------

@dataclass
class ReviewQueueHealth:
    waiting: int  # real reviews not yet decided (queued or being reviewed)
    oldest_age: timedelta | None  # how long the oldest of them has waited
    escalated: int  # of those, how many are in the moderators' queue


def review_queue_health(now: datetime) -> ReviewQueueHealth:
    waiting, oldest, escalated = db.session.execute(
        select(func.count(Review.id), func.min(Review.created_at), func.count(Review.id).filter(_with_moderators(now)))
        .join(Submission, Submission.id == Review.submission_id)
        .where(Review.is_planted.is_(False), Review.status != "done")
    ).one()
    return ReviewQueueHealth(int(waiting or 0), now - as_utc(oldest) if oldest is not None else None, int(escalated or 0))


# --- the periodic sweep ----------------------------------------------------------------------------

def escalation_sweep_job_id(at: datetime) -> str:
    """One job id per minute: a sweep enqueued twice for the same minute runs once (and is safe twice)."""
    return f"quality-escalate-reviews-{int(as_utc(at).timestamp()) // 60}"


@pending_work_source("quality-review-escalation", periodic=True)
def _escalation_sweep_pending():
    # Always pending: the worker's start-up reconcile begins the chain, each run schedules the next.
    yield PendingWork("jobs.quality.escalate_reviews", (), escalation_sweep_job_id(utcnow()))
