"""The QA review queue: claiming, planting known answers, deciding, and queueing for review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.database import after_commit, as_utc, is_postgres, retry_transaction, unit_of_work
from sapien.extensions import db
from sapien.labeling import answers, submissions
from sapien.labeling.answers import answers_match
from sapien.labeling.models import Item, Media, Submission, TaskPack
from sapien.moderation import verdicts
from sapien.quality.errors import (
    InvalidReview,
    NoReviewsLeft,
    NotAReviewer,
    OwnWork,
    ReviewClaimExpired,
    ReviewError,
    ReviewNotFound,
    SubmissionNotFound,
)
from sapien.quality.judging import draw_percent
from sapien.quality.models import Review
from sapien.quality.online import refresh_verified_label
from sapien.quality.reputation import REPUTATION_RATES, apply_reputation, can_review, reviewer_min_reputation, setting

REVIEW_REASON_MAX = 1000


def review_claim_minutes() -> int:
    return int(setting("REVIEW_CLAIM_MINUTES", 15))


def review_escalation_minutes() -> int:
    return int(setting("REVIEW_ESCALATION_MINUTES", 15))


def escalation_cutoff(now: datetime) -> datetime:
    """Reviews queued at or before this moment and still waiting belong to the moderators (quality/escalation.py)."""
    return now - timedelta(minutes=review_escalation_minutes())


def planted_review_rate_percent() -> float:
    return float(setting("PLANTED_REVIEW_RATE_PERCENT", 10))


def _require_reviewer(user_id: int, now: datetime) -> None:
    restriction = verdicts.is_restricted(user_id, "review", now)
    if restriction is not None:
        raise NotAReviewer(verdicts.restriction_message(restriction))
    if not can_review(user_id):
        raise NotAReviewer(
            _l("Reviewing opens at a reputation of %(needed)s (or with the reviewer role).", needed=reviewer_min_reputation())
        )


def _claimable(reviewer_id: int, now: datetime):
    """Real reviews this reviewer may take: queued or abandoned, not their own work, not an item they
    answered themselves, and neither escalated nor waiting past the escalation time (those are the
    moderators', see quality/escalation.py; one no one else may take is one this reviewer answered)."""
    own_items = select(Submission.item_id).where(Submission.user_id == reviewer_id)
    return (
        select(Review)
        .join(Submission, Submission.id == Review.submission_id)
        .where(
            Review.is_planted.is_(False),
            Review.escalated_at.is_(None),
            Review.created_at > escalation_cutoff(now),
            Review.author_id != reviewer_id,
            (Review.status == "queued") | ((Review.status == "claimed") & (Review.claim_expires_at <= now)),
            Submission.item_id.not_in(own_items),
        )
    )


def active_claim(reviewer_id: int, now: datetime, *, escalated: bool | None = None) -> Review | None:
    """The review this reviewer holds right now; `escalated` narrows it to a moderators' one or a regular one."""
    query = select(Review).where(Review.reviewer_id == reviewer_id, Review.status == "claimed", Review.claim_expires_at > now)
    if escalated is not None:
        query = query.where(Review.escalated_at.is_not(None) if escalated else Review.escalated_at.is_(None))
    return db.session.scalar(query.order_by(Review.claimed_at).limit(1))


def reviews_waiting(reviewer_id: int, now: datetime) -> int:
    return db.session.scalar(select(func.count()).select_from(_claimable(reviewer_id, now).subquery())) or 0


def take_review(review: Review, reviewer_id: int, now: datetime) -> bool:
    """Take the review with one conditional UPDATE, so two reviewers racing for it cannot both get it."""
    expires = now + timedelta(minutes=review_claim_minutes())
    taken = db.session.execute(
        update(Review)
        .where(
            Review.id == review.id,
            (Review.status == "queued") | ((Review.status == "claimed") & (Review.claim_expires_at <= now)),
        )
        .values(status="claimed", reviewer_id=reviewer_id, claimed_at=now, claim_expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        db.session.refresh(review)
    return bool(taken)


def _plant_review(reviewer_id: int, now: datetime) -> Review | None:
    """A known-answer review: someone's answer to a gold item, whose right verdict we already know."""
    own_items = select(Submission.item_id).where(Submission.user_id == reviewer_id)
    already = select(Review.submission_id).where(Review.reviewer_id == reviewer_id, Review.is_planted.is_(True))
    candidates = list(
        db.session.scalars(
            select(Submission)
            .where(
                Submission.is_gold.is_(True),
                Submission.gold_correct.is_not(None),
                Submission.user_id != reviewer_id,
                Submission.item_id.not_in(own_items),
                Submission.id.not_in(already),
            )
            .order_by(Submission.id.desc())
            .limit(50)
        )
    )
    if not candidates:
        return None
    chosen = candidates[int(draw_percent(f"plant:{reviewer_id}:{now.isoformat()}") * len(candidates) / 100) % len(candidates)]
    review = Review(
        submission_id=chosen.id,
        pack_id=chosen.pack_id,
        author_id=chosen.user_id,
        reviewer_id=reviewer_id,
        status="claimed",
        is_planted=True,
        expected_outcome="accepted" if chosen.gold_correct else "rejected",
        created_at=now,
        claimed_at=now,
        claim_expires_at=now + timedelta(minutes=review_claim_minutes()),
    )
    try:
        with db.session.begin_nested():
            db.session.add(review)
    except IntegrityError:
        return None
    return review


def claim_next_review(reviewer_id: int, now: datetime) -> Review:
    """The reviewer's current claim, or the oldest review they may take (sometimes a planted one)."""
    with unit_of_work() as session:
        _require_reviewer(reviewer_id, now)
        current = active_claim(reviewer_id, now)
        if current is not None:
            return current
        query = _claimable(reviewer_id, now).order_by(Review.id).limit(5)
        if is_postgres():
            query = query.with_for_update(of=Review, skip_locked=True)
        candidates = list(session.scalars(query))
        if not candidates:
            raise NoReviewsLeft(_l("Nothing is waiting for review right now. Thank you — check back later."))
        done = session.scalar(select(func.count()).select_from(Review).where(Review.reviewer_id == reviewer_id)) or 0
        if draw_percent(f"planted:{reviewer_id}:{done}") < planted_review_rate_percent():
            planted = _plant_review(reviewer_id, now)
            if planted is not None:
                return planted
        for review in candidates:
            if take_review(review, reviewer_id, now):
                return review
        raise NoReviewsLeft(_l("Someone else just took the last review. Try again in a moment."))


def claim_review(review_id: int, reviewer_id: int, now: datetime) -> Review:
    """Take one particular review (a link to it). Refused for the reviewer's own work."""
    with unit_of_work() as session:
        _require_reviewer(reviewer_id, now)
        review = session.get(Review, review_id)
        if review is None or (review.is_planted and review.reviewer_id != reviewer_id):
            raise ReviewNotFound(_l("There is no such review."))
        if review.author_id == reviewer_id:
            raise OwnWork(_l("You cannot review your own work."))
        if review.status == "claimed" and review.reviewer_id == reviewer_id and as_utc(review.claim_expires_at) > now:
            return review
        if review.status == "done":
            raise ReviewError(_l("This review has already been decided."))
        if review.escalated_at is not None or as_utc(review.created_at) <= escalation_cutoff(now):
            raise ReviewError(_l("This review waited too long and went to the moderators' queue."))
        if not take_review(review, reviewer_id, now):
            raise ReviewError(_l("Another reviewer is working on this one."))
        return review


def release_review(review_id: int, reviewer_id: int, now: datetime) -> None:
    """Give a claimed review back to the queue (planted ones are simply dropped)."""
    with unit_of_work() as session:
        review = session.get(Review, review_id)
        if review is None or review.reviewer_id != reviewer_id or review.status != "claimed":
            raise ReviewNotFound(_l("There is no such review."))
        if review.is_planted:
            session.delete(review)
            return
        review.status, review.reviewer_id, review.claimed_at, review.claim_expires_at = "queued", None, None, None


def _planted_verdict_right(pack: TaskPack, item: Item, review: Review, outcome: str, fixed_answer: dict | None) -> bool:
    if outcome == "fixed":
        # A fix is right when it lands on the known answer.
        return fixed_answer is not None and item.gold_answer is not None and answers_match(pack, item.gold_answer, fixed_answer)
    return outcome == review.expected_outcome


@retry_transaction
def decide_review(
    review_id: int, reviewer_id: int, *, outcome: str, reason: str = "", fixed_answer: dict | None = None, now: datetime
) -> Review:
    """Accept, fix-and-accept or reject (with a reason) a claimed review.

    A real review decides the submission through labeling (accept verifies it for the settlement batch to pay;
    reject reverses pay) and moves the author's reputation; a planted one moves only the reviewer's, by
    whether the verdict was right.
    """

    with unit_of_work() as session:
        review = session.get(Review, review_id, with_for_update=True)
        if review is None or review.reviewer_id != reviewer_id:
            raise ReviewNotFound(_l("There is no such review."))
        if review.author_id == reviewer_id:
            raise OwnWork(_l("You cannot review your own work."))
        if review.status == "done":
            raise ReviewError(_l("This review has already been decided."))
        if review.status != "claimed" or review.claim_expires_at is None or as_utc(review.claim_expires_at) <= now:
            raise ReviewClaimExpired(_l("Your time for this review ran out and it went back to the queue. Claim the next one."))
        if outcome not in ("accepted", "fixed", "rejected"):
            raise InvalidReview(_l("Choose accept, fix and accept, or reject."), field="outcome")
        reason = (reason or "").strip()
        if outcome == "rejected" and not reason:
            raise InvalidReview(_l("Say why you reject it: the member sees your reason."), field="reason")
        if len(reason) > REVIEW_REASON_MAX:
            raise InvalidReview(_l("Keep the reason under %(max)s characters.", max=REVIEW_REASON_MAX), field="reason")
        submission = session.get(Submission, review.submission_id)
        item = session.get(Item, submission.item_id)
        pack = session.get(TaskPack, submission.pack_id)
        if outcome == "fixed":
            if fixed_answer is None:
                raise InvalidReview(_l("Make your fix in the answer form before choosing fix and accept."), field="answer")
            media = session.get(Media, item.media_id) if item.media_id else None
            fixed_answer = answers.validate_answer(pack, item, fixed_answer, media=media)
        review.status, review.outcome, review.reason, review.decided_at = "done", outcome, reason, now
        review.fixed_answer = fixed_answer if outcome == "fixed" else None
        if review.is_planted:
            right = _planted_verdict_right(pack, item, review, outcome, fixed_answer)
            apply_reputation(reviewer_id, f"planted:{review.id}", "planted_review", now, good=right)
            author_for_event = None
        else:
            if outcome == "rejected":
                submissions.reject_submission(submission.id, reason=reason, now=now)
                apply_reputation(submission.user_id, f"review:{review.id}", "review", now, good=False)
                refresh_verified_label(item, pack, now)
            else:
                submissions.accept_submission(submission.id, now=now, fixed_answer=fixed_answer if outcome == "fixed" else None)
                if outcome == "fixed":
                    apply_reputation(submission.user_id, f"review:{review.id}", "review", now, good=False, rate=REPUTATION_RATES["review"] / 2)
                else:
                    apply_reputation(submission.user_id, f"review:{review.id}", "review", now, good=True)
                item = session.get(Item, item.id)
                # A fix changes the answers the label stands on; an accept on an item whose answers never agreed
                # is the second voice it lacked.
                if item.status != "open" and (outcome == "fixed" or item.no_consensus_at is not None):
                    refresh_verified_label(item, pack, now)
            author_for_event = submission.user_id
        sent = dict(reviewer_id=reviewer_id, submission_id=submission.id, author_id=author_for_event, outcome=outcome, now=now)
        after_commit(lambda: events.review_completed.send(None, **sent))
        return review


@dataclass
class ReviewView:
    review: Review
    submission: Submission
    item: Item
    pack: TaskPack
    media: Media | None


def review_view(review_id: int, reviewer_id: int) -> ReviewView:
    review = db.session.get(Review, review_id)
    if review is None or review.reviewer_id != reviewer_id:
        raise ReviewNotFound(_l("There is no such review."))
    submission = db.session.get(Submission, review.submission_id)
    item = db.session.get(Item, submission.item_id)
    pack = db.session.get(TaskPack, submission.pack_id)
    media = db.session.get(Media, item.media_id) if item.media_id else None
    return ReviewView(review, submission, item, pack, media)


def recent_reviews(reviewer_id: int, limit: int = 10) -> list[Review]:
    return list(
        db.session.scalars(
            select(Review).where(Review.reviewer_id == reviewer_id, Review.status == "done").order_by(Review.decided_at.desc(), Review.id.desc()).limit(limit)
        )
    )


def queue_for_review(submission_id: int, *, now: datetime) -> Review:
    """Send an already decided submission to the review queue (a moderator's spot check). An accepted
    submission stays paid until a reviewer rejects it; the rejection then reverses the pay."""
    with unit_of_work() as session:
        submission = session.get(Submission, submission_id)
        if submission is None:
            raise SubmissionNotFound(_l("There is no such submission."))
        if submission.is_gold:
            raise ReviewError(_l("Gold answers are checked automatically and are not reviewed."))
        existing = session.scalar(select(Review).where(Review.submission_id == submission.id, Review.is_planted.is_(False)))
        if existing is not None:
            if existing.status != "done":
                return existing
            raise ReviewError(_l("This submission has already been reviewed."))
        review = Review(submission_id=submission.id, pack_id=submission.pack_id, author_id=submission.user_id, status="queued", created_at=now)
        session.add(review)
        session.flush()
        return review
