"""The two-stage QA: review queue, claims, outcomes, planted reviews, own work refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sapien import events
from sapien.extensions import db
from sapien.quality.models import Review
from tests.conftest import verify_and_settle
from tests.quality.conftest import NOW, answer, decide_items, items_of, label, make_pack, make_user


def _pending(tmp_path, *, items=1, **settings):
    pack = make_pack(tmp_path, items=items, review_rate_percent=100, **settings)
    author = make_user()
    results = [answer(author, item.id, label("pos")) for item in items_of(pack.id)]
    assert all(r.status == "pending_review" for r in results)
    return pack, author, results


def test_reviewer_claims_accepts_and_author_is_paid(ctx, tmp_path, config):
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.ledger import service as ledger
    from sapien.quality import reputation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    _pack, author, (result,) = _pending(tmp_path)
    reviewer = make_user(role="reviewer")
    seen = []
    events.review_completed.connect(receiver := lambda _s, **kw: seen.append(kw))
    try:
        review = reviews.claim_next_review(reviewer, NOW)
        assert review.submission_id == result.submission_id and review.status == "claimed"
        assert reviews.claim_next_review(reviewer, NOW).id == review.id  # the current claim is resumed
        reviews.decide_review(review.id, reviewer, outcome="accepted", now=NOW)
    finally:
        events.review_completed.disconnect(receiver)
    submission = db.session.get(Submission, result.submission_id)
    assert submission.status == "accepted" and submission.paid_points > 0 and submission.reward_state == "verified"
    assert ledger.balance(author, "points") == 0  # verified by the accept, paid by the settlement batch
    assert verify_and_settle(submission_ids=[]) == 1
    assert ledger.balance(author, "points") == submission.paid_points
    assert reputation.reputation_of(author) > 500
    assert seen == [{"reviewer_id": reviewer, "submission_id": submission.id, "author_id": author, "outcome": "accepted", "now": NOW}]


def test_members_below_the_threshold_cannot_review(ctx, tmp_path):
    from sapien.quality import errors as quality_errors
    from sapien.quality import reviews

    _pending(tmp_path)
    with pytest.raises(quality_errors.NotAReviewer):
        reviews.claim_next_review(make_user(), NOW)


def test_own_work_is_never_offered_and_refused_by_id(ctx, tmp_path, config):
    from sapien.quality import errors as quality_errors
    from sapien.quality import reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    pack = make_pack(tmp_path, items=1, review_rate_percent=100)
    reviewer = make_user(role="reviewer")
    own = answer(reviewer, items_of(pack.id)[0].id, label("pos"))
    review_id = db.session.query(Review).filter_by(submission_id=own.submission_id).one().id
    with pytest.raises(quality_errors.NoReviewsLeft):
        reviews.claim_next_review(reviewer, NOW)
    with pytest.raises(quality_errors.OwnWork, match="cannot review your own work"):
        reviews.claim_review(review_id, reviewer, NOW)


def test_claim_expires_and_returns_to_the_queue(ctx, tmp_path, config):
    from sapien.quality import errors as quality_errors
    from sapien.quality import reviews

    # Escalation later than the claim's 15 minutes, so the expired claim returns to the reviewers' queue
    # (with both at 15 it goes to the moderators': test_escalation.py).
    config(PLANTED_REVIEW_RATE_PERCENT=0, REVIEW_CLAIM_MINUTES=15, REVIEW_ESCALATION_MINUTES=60)
    _pending(tmp_path)
    first, second = make_user(role="reviewer"), make_user(role="reviewer")
    review = reviews.claim_next_review(first, NOW)
    with pytest.raises(quality_errors.NoReviewsLeft):
        reviews.claim_next_review(second, NOW + timedelta(minutes=5))
    later = NOW + timedelta(minutes=16)
    assert reviews.claim_next_review(second, later).id == review.id
    with pytest.raises(quality_errors.ReviewNotFound):
        reviews.decide_review(review.id, first, outcome="accepted", now=later)
    # The first reviewer's own claim, once expired, cannot be decided either.
    _pending(tmp_path)
    mine = reviews.claim_next_review(first, later)
    with pytest.raises(quality_errors.ReviewClaimExpired):
        reviews.decide_review(mine.id, first, outcome="accepted", now=later + timedelta(minutes=20))


def test_reject_needs_a_reason_and_rejection_is_shown(ctx, tmp_path, config):
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.quality import errors as quality_errors
    from sapien.quality import reputation, reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    _pack, author, (result,) = _pending(tmp_path)
    reviewer = make_user(role="reviewer")
    review = reviews.claim_next_review(reviewer, NOW)
    with pytest.raises(quality_errors.InvalidReview, match="Say why"):
        reviews.decide_review(review.id, reviewer, outcome="rejected", reason="  ", now=NOW)
    with pytest.raises(quality_errors.InvalidReview):
        reviews.decide_review(review.id, reviewer, outcome="maybe", now=NOW)
    reviews.decide_review(review.id, reviewer, outcome="rejected", reason="Sarcasm: this is negative.", now=NOW)
    submission = db.session.get(Submission, result.submission_id)
    assert submission.status == "rejected" and submission.rejection_reason == "Sarcasm: this is negative."
    assert submission.paid_points == 0
    assert reputation.reputation_of(author) < 500
    with pytest.raises(quality_errors.ReviewError, match="already been decided"):
        reviews.decide_review(review.id, reviewer, outcome="accepted", now=NOW)


def test_reject_after_pay_reverses_it(ctx, tmp_path, config):
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from sapien.ledger import service as ledger
    from sapien.quality import reviews

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    pack = make_pack(tmp_path, items=1, review_rate_percent=0)
    author = make_user()
    result = answer(author, items_of(pack.id)[0].id, label("pos"))
    assert result.status == "accepted" and ledger.balance(author, "points") == 0
    verify_and_settle(pack_id=pack.id)
    assert ledger.balance(author, "points") == result.points > 0
    reviews.queue_for_review(result.submission_id, now=NOW)  # a moderator's spot check
    reviewer = make_user(role="reviewer")
    review = reviews.claim_next_review(reviewer, NOW)
    reviews.decide_review(review.id, reviewer, outcome="rejected", reason="Copied answer.", now=NOW)
    assert ledger.balance(author, "points") == 0
    assert db.session.get(Submission, result.submission_id).reversed_at is not None


def test_fix_and_accept_changes_the_verified_answer(ctx, tmp_path, config):
    from sapien.extensions import db
    from sapien.labeling.models import Item, Submission
    from sapien.quality import errors as quality_errors
    from sapien.quality import reviews
    from sapien.quality.models import VerifiedLabel

    config(PLANTED_REVIEW_RATE_PERCENT=0, QUALITY_CONFIDENCE_THRESHOLD=0.5)
    pack, _author, (result,) = _pending(tmp_path, labels_per_item=1, max_labels_per_item=1)
    reviewer = make_user(role="reviewer")
    review = reviews.claim_next_review(reviewer, NOW)
    with pytest.raises(quality_errors.InvalidReview):
        reviews.decide_review(review.id, reviewer, outcome="fixed", now=NOW)
    from sapien.labeling.errors import InvalidAnswer

    with pytest.raises(InvalidAnswer):
        reviews.decide_review(review.id, reviewer, outcome="fixed", fixed_answer=label("meh"), now=NOW)
    reviews.decide_review(review.id, reviewer, outcome="fixed", fixed_answer=label("neg"), now=NOW)
    assert decide_items() == 1  # the accept queued its item's decision
    submission = db.session.get(Submission, result.submission_id)
    assert submission.status == "accepted" and submission.fixed_answer == label("neg")
    verified = db.session.get(VerifiedLabel, submission.item_id)
    assert verified.answer == label("neg")
    assert verified.review_ids == [review.id]
    assert db.session.get(Item, submission.item_id).status == "retired"


def test_planted_reviews_score_the_reviewer(ctx, tmp_path, config):
    from sapien.quality import reviews
    from sapien.quality.models import ReputationEvent

    pack = make_pack(tmp_path, items=2, gold=2, review_rate_percent=100)
    golds = items_of(pack.id, gold=True)
    sloppy = make_user()
    answer(sloppy, golds[0].id, label("neg"))  # a wrong gold answer: the right verdict is "rejected"
    answer(sloppy, golds[1].id, label("pos"))  # a right one: the right verdict is "accepted"
    answer(make_user(), items_of(pack.id, gold=False)[0].id, label("pos"))  # a real review waiting
    answer(make_user(), items_of(pack.id, gold=False)[1].id, label("pos"))
    reviewer = make_user(role="reviewer")
    config(PLANTED_REVIEW_RATE_PERCENT=100)
    verdicts = []
    for _ in range(2):
        review = reviews.claim_next_review(reviewer, NOW)
        assert review.is_planted and review.author_id == sloppy
        # This careless reviewer accepts everything.
        reviews.decide_review(review.id, reviewer, outcome="accepted", now=NOW)
        verdicts.append(review.expected_outcome)
    assert sorted(verdicts) == ["accepted", "rejected"]
    moves = {e.key.split(":")[0]: e.delta for e in db.session.query(ReputationEvent).filter_by(user_id=reviewer)}
    deltas = sorted(e.delta for e in db.session.query(ReputationEvent).filter_by(user_id=reviewer, reason="planted_review"))
    assert deltas[0] < 0 < deltas[1] and set(moves) == {"planted"}
    # Planted reviews never change the gold submission itself.
    from sapien.labeling.models import Submission

    assert {s.status for s in db.session.query(Submission).filter_by(user_id=sloppy)} == {"accepted", "rejected"}
