"""Judging a fresh submission: the gold check with instant feedback, or sampling into review.

Review sampling
---------------
A non-gold submission goes to the review queue with probability
``rate = base + (100 − base) × max(0, 500 − reputation) / 500`` percent, where ``base`` is the pack's
``review_rate_percent``: members at or above the default reputation are sampled at the pack's rate,
a member at 250 halfway between that rate and 100 %, a member at 0 always. A pack with a rate of 0
(the crowd replay, which has no reviewers) is never sampled. The draw is a hash of the submission's
lease (one submission per lease, and known before the submission is written), so the same submission is
always sampled the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.database import after_commit, before_commit, unit_of_work
from sapien.labeling.answers import answers_match
from sapien.labeling.models import Item, Submission, TaskPack
from sapien.quality.models import Review
from sapien.quality.reputation import DEFAULT_REPUTATION, apply_reputation, reputation_of


@dataclass(frozen=True)
class GoldFeedback:
    correct: bool
    expected: dict
    explanation: str


@dataclass(frozen=True)
class Judgement:
    status: str  # "accepted" | "pending_review" | "rejected"
    feedback: GoldFeedback | None = None
    reason: str = ""


def review_rate_percent(pack: TaskPack, reputation: int) -> float:
    """The chance (in percent) a member's submission is sampled for review; see the module docstring."""
    base = pack.review_rate_percent
    if base <= 0:
        return 0.0
    shortfall = max(0, DEFAULT_REPUTATION - reputation) / DEFAULT_REPUTATION
    return min(100.0, base + (100 - base) * shortfall)


def draw_percent(seed: str) -> float:
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _send_gold_answered(user_id: int, item_id: int, pack_id: int, task_type: str, correct: bool, now: datetime) -> None:
    after_commit(lambda: events.gold_answered.send(None, user_id=user_id, item_id=item_id, pack_id=pack_id, task_type=task_type, correct=correct, now=now))


def judge_submission(submission: Submission, *, now: datetime) -> Judgement:
    """Decide a fresh submission's first status (labeling asks through `events.judge_submission`, inside
    its unit of work, before the row is written: it goes in once, with the status this returns).

    Gold items are checked at once against the known answer (feedback + reputation + `gold_answered`);
    other submissions are sampled into the review queue or accepted.
    """
    with unit_of_work() as session:
        item = session.get(Item, submission.item_id)
        pack = session.get(TaskPack, submission.pack_id)
        if item.is_gold and item.gold_answer is not None:
            correct = answers_match(pack, item.gold_answer, submission.answer)
            submission.is_gold = True
            submission.gold_correct = correct
            explanation = item.gold_explanation or ""
            reason = ""
            if not correct:
                reason = explanation or str(_l("This was a known-answer item and the answer did not match the expected one."))
                submission.rejection_reason = reason
            # Last in the transaction, after labeling has paid: a member's balance rows are locked before
            # their reputation row on every path (a reviewer's accept pays, then moves the reputation).
            # The row has its id by then (labeling writes it right after this judgement).
            before_commit(lambda: apply_reputation(submission.user_id, f"gold:{submission.id}", "gold", now, good=correct))
            _send_gold_answered(submission.user_id, item.id, pack.id, pack.task_type, correct, now)
            return Judgement(
                status="accepted" if correct else "rejected",
                feedback=GoldFeedback(correct=correct, expected=dict(item.gold_answer), explanation=explanation),
                reason=reason,
            )
        rate = review_rate_percent(pack, reputation_of(submission.user_id))
        if rate > 0 and draw_percent(f"review:{submission.lease_id}") < rate:
            session.flush()  # the review points at the submission: written now, as pending review
            try:
                with session.begin_nested():
                    session.add(Review(submission_id=submission.id, pack_id=pack.id, author_id=submission.user_id, status="queued", created_at=now))
            except IntegrityError:
                pass  # already queued
            return Judgement(status="pending_review")
        return Judgement(status="accepted")
