"""Issue 10: no answer waits forever. A review nobody took in time, or that nobody may take, goes to the
moderators' queue; moderators take it (never on an item they answered) and decide it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from jobs.labeling import settle_rewards
from sapien.extensions import db
from sapien.quality.models import Review
from tests.quality.conftest import NOW, answer, items_of, label, make_pack, make_user


def _notes(user_id: int, kind: str = "reviews_escalated") -> list:
    from sapien.notifications.models import Notification

    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id, Notification.kind == kind)))


def _item_answered_by(tmp_path, *answerers, now=NOW):
    """One item every answerer labels, each answer queued for review; returns (pack, [submission ids])."""
    pack = make_pack(tmp_path, items=1, review_rate_percent=100, labels_per_item=len(answerers), max_labels_per_item=len(answerers))
    item = items_of(pack.id)[0]
    results = [answer(user_id, item.id, label("pos"), now=now) for user_id in answerers]
    assert all(result.status == "pending_review" for result in results)
    return pack, [result.submission_id for result in results]


def _review_of(submission_id: int) -> Review:
    return db.session.scalar(select(Review).where(Review.submission_id == submission_id, Review.is_planted.is_(False)))


def test_the_issue_the_only_reviewer_answered_the_item_so_a_moderator_decides_after_the_time(ctx, tmp_path, config):
    from sapien.labeling.models import Submission
    from sapien.ledger import service as ledger
    from sapien.quality import errors as quality_errors
    from sapien.quality import escalation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0, REVIEW_ESCALATION_MINUTES=15)
    author, reviewer, moderator = make_user(), make_user(role="reviewer"), make_user(role="moderator")
    _pack, (mine, theirs) = _item_answered_by(tmp_path, author, reviewer)

    # The moderator could still take it from the reviewers' queue, so nothing escalates before the time,
    # but the only reviewer can take neither answer: they wrote one and answered the item.
    soon = NOW + timedelta(minutes=5)
    assert escalation.escalate_reviews(soon) == []
    assert escalation.escalated_reviews(moderator, soon) == []
    with pytest.raises(quality_errors.NoReviewsLeft):
        reviews.claim_next_review(reviewer, soon)

    later = NOW + timedelta(minutes=16)
    queue = escalation.escalated_reviews(moderator, later)
    assert [row.review.submission_id for row in queue] == [mine, theirs]  # oldest first
    assert [row.age for row in queue] == [timedelta(minutes=16)] * 2
    assert escalation.escalated_submission_ids([mine], later) == {mine}  # the author's history: "With a moderator"
    health = escalation.review_queue_health(later)
    assert (health.waiting, health.oldest_age, health.escalated) == (2, timedelta(minutes=16), 2)

    escalated = escalation.escalate_reviews(later)
    assert escalated == sorted(_review_of(s).id for s in (mine, theirs))
    assert escalation.escalate_reviews(later + timedelta(minutes=1)) == []  # recorded once
    assert {_review_of(s).escalated_at for s in (mine, theirs)} == {later}
    notes = _notes(moderator)
    assert len(notes) == 1 and notes[0].params == {"count": 2} and notes[0].link == "/manage/reviews"  # one per batch

    review = escalation.claim_escalated_review(_review_of(mine).id, moderator, later)
    assert review.reviewer_id == moderator and review.status == "claimed"
    reviews.decide_review(review.id, moderator, outcome="accepted", now=later)
    submission = db.session.get(Submission, mine)
    assert submission.status == "accepted" and submission.reward_state == "verified" and submission.paid_points > 0
    assert settle_rewards() == 1  # the settlement batch pays what the moderator verified
    assert ledger.balance(author, "points") == submission.paid_points
    assert [row.review.submission_id for row in escalation.escalated_reviews(moderator, later)] == [theirs]
    assert escalation.escalated_submission_ids([mine, theirs], later) == {theirs}


def test_a_review_an_eligible_reviewer_may_take_waits_for_them_until_the_time(ctx, tmp_path, config):
    from sapien.quality import errors as quality_errors
    from sapien.quality import escalation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0, REVIEW_ESCALATION_MINUTES=15)
    author, reviewer, moderator = make_user(), make_user(role="reviewer"), make_user(role="moderator")
    _pack, (submission_id,) = _item_answered_by(tmp_path, author)
    # The reviewer and the moderator answered another item (not reviewed): they may still take this one.
    other = make_pack(tmp_path, items=1, review_rate_percent=0, labels_per_item=2, max_labels_per_item=2)
    for user_id in (reviewer, moderator):
        answer(user_id, items_of(other.id)[0].id, label("neg"))

    almost = NOW + timedelta(minutes=14, seconds=59)
    assert escalation.escalate_reviews(almost) == []
    assert escalation.escalated_reviews(moderator, almost) == [] and _notes(moderator) == []
    assert reviews.reviews_waiting(reviewer, almost) == 1
    with pytest.raises(quality_errors.ReviewNotFound):
        escalation.claim_escalated_review(_review_of(submission_id).id, moderator, almost)  # not the moderators' yet

    at_time = NOW + timedelta(minutes=15)
    assert reviews.reviews_waiting(reviewer, at_time) == 0  # the reviewers' queue lets it go at once
    assert escalation.escalate_reviews(at_time) == [_review_of(submission_id).id]
    with pytest.raises(quality_errors.ReviewError, match="moderators' queue"):
        reviews.claim_review(_review_of(submission_id).id, reviewer, at_time)


def test_a_claim_abandoned_past_the_time_escalates_when_it_runs_out(ctx, tmp_path, config):
    from sapien.quality import escalation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0, REVIEW_ESCALATION_MINUTES=15, REVIEW_CLAIM_MINUTES=15)
    author, reviewer = make_user(), make_user(role="reviewer")
    make_user(role="moderator")
    _item_answered_by(tmp_path, author)
    claimed = reviews.claim_next_review(reviewer, NOW + timedelta(minutes=10))
    assert escalation.escalate_reviews(NOW + timedelta(minutes=20)) == []  # still the reviewer's for 5 minutes
    assert escalation.escalate_reviews(NOW + timedelta(minutes=26)) == [claimed.id]


def test_nobody_else_may_review_so_it_escalates_at_once_and_the_answering_moderator_must_leave_it(ctx, tmp_path, config):
    from sapien.labeling.models import Submission
    from sapien.quality import errors as quality_errors
    from sapien.quality import escalation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0, REVIEW_ESCALATION_MINUTES=15)
    author, reviewer, answering_moderator = make_user(), make_user(role="reviewer"), make_user(role="moderator")
    _pack, (mine, _r, _m) = _item_answered_by(tmp_path, author, reviewer, answering_moderator)

    assert len(escalation.escalate_reviews(NOW)) == 3  # every reviewer answered the item: no point waiting
    review_id = _review_of(mine).id
    assert escalation.escalated_reviews(answering_moderator, NOW)[0].answered_by_me
    with pytest.raises(quality_errors.OwnWork, match="another moderator must review it"):
        escalation.claim_escalated_review(review_id, answering_moderator, NOW)
    with pytest.raises(quality_errors.NotAReviewer):
        escalation.claim_escalated_review(review_id, reviewer, NOW)  # reviewers do not take the moderators' reviews

    other_moderator = make_user(role="moderator")
    assert len(_notes(other_moderator)) == 0  # escalated before they joined
    review = escalation.claim_escalated_review(review_id, other_moderator, NOW)
    with pytest.raises(quality_errors.ReviewError, match="Another moderator"):
        escalation.claim_escalated_review(review_id, make_user(role="admin"), NOW)
    reviews.decide_review(review.id, other_moderator, outcome="rejected", reason="Clearly negative.", now=NOW)
    assert db.session.get(Submission, mine).status == "rejected"
    with pytest.raises(quality_errors.ReviewError, match="already been decided"):
        escalation.claim_escalated_review(review_id, other_moderator, NOW)


def test_a_released_escalated_review_stays_with_the_moderators(ctx, tmp_path, config):
    from sapien.quality import escalation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    author, moderator = make_user(), make_user(role="moderator")
    _pack, (submission_id,) = _item_answered_by(tmp_path, author)
    later = NOW + timedelta(hours=1)
    review = escalation.claim_escalated_review(_review_of(submission_id).id, moderator, later)  # records the escalation first
    assert review.escalated_at == later
    reviews.release_review(review.id, moderator, later)
    assert reviews.reviews_waiting(make_user(role="reviewer"), later + timedelta(days=1)) == 0
    [row] = escalation.escalated_reviews(moderator, later)
    assert row.review.id == review.id and row.review.status == "queued"


def test_planted_and_decided_reviews_never_escalate(ctx, tmp_path, config):
    from sapien.quality import escalation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    author, reviewer = make_user(), make_user(role="reviewer")
    make_user(role="moderator")
    _item_answered_by(tmp_path, author)
    review = reviews.claim_next_review(reviewer, NOW)
    reviews.decide_review(review.id, reviewer, outcome="accepted", now=NOW)
    assert escalation.escalate_reviews(NOW + timedelta(days=1)) == []
    assert escalation.review_queue_health(NOW + timedelta(days=1)).waiting == 0
    assert db.session.scalar(select(func.count()).select_from(Review).where(Review.escalated_at.is_not(None))) == 0


def test_the_escalation_job_run_twice_escalates_once_and_schedules_its_next_sweep(ctx, tmp_path, config, redis_conn):
    from rq.registry import ScheduledJobRegistry

    from jobs.quality import escalate_reviews
    from sapien.database import utcnow
    from sapien.queue import get_queue

    config(PLANTED_REVIEW_RATE_PERCENT=0, REVIEW_ESCALATION_MINUTES=15)
    author, moderator = make_user(), make_user(role="moderator")
    make_user(role="reviewer")
    _pack, (submission_id,) = _item_answered_by(tmp_path, author, now=utcnow() - timedelta(minutes=20))
    assert escalate_reviews() == 1
    assert escalate_reviews() == 0
    db.session.expire_all()
    assert _review_of(submission_id).escalated_at is not None
    assert len(_notes(moderator)) == 1
    scheduled = ScheduledJobRegistry(queue=get_queue()).get_job_ids()
    assert any(job_id.startswith("quality-escalate-reviews-") for job_id in scheduled), scheduled


def test_the_reconciler_starts_the_sweep_chain(ctx):
    from sapien.queue import get_queue, reconcile

    assert reconcile()["quality-review-escalation"] == 1
    assert any(job_id.startswith("quality-escalate-reviews-") for job_id in get_queue().get_job_ids())
