"""Undoing the damage of a restrict or ban decision, in one confirmed action.

For the decision's member:
- every answer they gave that still stands is rejected through labeling (`reject_submission`): what it was
  paid is reversed by compensating ledger entries (never deletes, never below zero, keyed
  `submission:<id>:<currency>:reversal`), what it would have earned is voided, its revenue shares void,
  and its slot goes back to the item;
- every item they answered gets its verified label recomputed from the answers left (quality's
  `refresh_verified_label`, which verifies the honest answers that agree with it); an item whose label no
  longer stands is withdrawn and re-queued (open again, so other members label it); a moderator's override
  stands;
- every real review they decided is re-opened (queued for another reviewer): a rubber-stamped accept is
  redone, and a reject they got wrong can be overturned;
- what that work earned indirectly is taken back (`indirect_rewards`): every reward for activity (quest
  rewards, arena winnings, revenue shares as a contributor) credited since the earliest answer or review
  this undo takes back, by compensating entries keyed `ledger-entry:<id>:reversal` (never below zero), and
  the badges rules and quest rewards awarded them in that time are revoked.

The decision row is locked and stamped `reversed_at` with a summary: running it twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from sapien.database import unit_of_work
from sapien.labeling import submissions as labeling_submissions
from sapien.labeling.models import Item, Submission, TaskPack
from sapien.moderation import service as audit
from sapien.moderation.models import Decision
from sapien.moderation.safety.decisions import DecisionError
from sapien.moderation.safety.indirect_rewards import reverse_indirect_rewards
from sapien.quality.models import Review, VerifiedLabel
from sapien.quality.online import item_decision, refresh_verified_label


def _recompute(item: Item, pack: TaskPack, now: datetime, session) -> str:
    """'kept' (a label stands on the answers left), 'requeued' (withdrawn, open again) or 'open' (never verified)."""
    label = session.get(VerifiedLabel, item.id)
    if label is not None and label.overridden_at is not None:
        return "kept"
    accepted = list(session.scalars(select(Submission).where(Submission.item_id == item.id, Submission.status == "accepted").order_by(Submission.id)))
    decision = item_decision(pack, accepted) if accepted else None
    if label is not None and decision is not None and decision.verifiable:
        refresh_verified_label(item, pack, now)
        return "kept"
    if label is not None:
        session.delete(label)
    if item.status == "open" and label is None:
        return "open"
    session.execute(
        update(Item).where(Item.id == item.id).values(status="open", no_consensus_at=None).execution_options(synchronize_session=False)
    )
    return "requeued"


def undo_damage(decision_id: int, moderator_id: int | None, now: datetime) -> dict:
    """Reverse what the decision's member earned, directly and indirectly, recompute and re-queue what they
    touched, re-open their reviews. Returns the summary (the same one on a second run, which changes nothing)."""
    with unit_of_work() as session:
        decision = session.get(Decision, decision_id, with_for_update=True)
        if decision is None:
            raise DecisionError(_l("There is no such decision."))
        if decision.action not in ("restrict", "ban"):
            raise DecisionError(_l("Only a restriction or a ban undoes what a member earned."))
        if decision.reversed_at is not None:
            return dict(decision.reversal or {})
        user_id = decision.user_id
        standing = list(session.scalars(
            select(Submission).where(Submission.user_id == user_id, Submission.status != "rejected").order_by(Submission.id)
        ))
        points = sum(s.paid_points for s in standing if s.reward_state == "paid" and s.reversed_at is None)
        item_ids = sorted({s.item_id for s in standing if not s.is_gold})
        reviewed_since = session.scalar(
            select(func.min(Review.decided_at)).where(Review.reviewer_id == user_id, Review.is_planted.is_(False), Review.status == "done")
        )
        # When the work this undo takes back began: rewards for activity credited since then go with it.
        fraud_began = min([s.created_at for s in standing] + ([reviewed_since] if reviewed_since else []), default=None)
        for submission in standing:
            labeling_submissions.reject_submission(submission.id, reason=f"Reversed by moderation decision #{decision.id}", now=now)
        outcomes = {"kept": 0, "requeued": 0, "open": 0}
        for item_id in item_ids:
            item = session.execute(select(Item).where(Item.id == item_id).with_for_update().execution_options(populate_existing=True)).scalar_one()
            pack = session.get(TaskPack, item.pack_id)
            outcomes[_recompute(item, pack, now, session)] += 1
        reopened = session.execute(
            update(Review)
            .where(Review.reviewer_id == user_id, Review.is_planted.is_(False), Review.status == "done")
            .values(status="queued", reviewer_id=None, outcome=None, reason="", fixed_answer=None, claimed_at=None,
                    claim_expires_at=None, decided_at=None, escalated_at=None, created_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount or 0
        indirect = (reverse_indirect_rewards(user_id, fraud_began, moderator_id, decision.id, now) if fraud_began is not None
                    else {"rewards": [], "badges_revoked": []})
        summary = {
            "answers_rejected": len(standing), "points_reversed": points, "labels_recomputed": outcomes["kept"],
            "items_requeued": outcomes["requeued"], "reviews_reopened": reopened,
            "rewards_reversed": indirect["rewards"], "badges_revoked": indirect["badges_revoked"],
            "reward_points_reversed": sum(r["amount"] for r in indirect["rewards"] if r["currency"] == "points"),
        }
        decision.reversed_at, decision.reversal = now, summary
        audit.record(moderator_id, "moderation.undo", f"user:{user_id}", f"decision #{decision.id}: {summary}", now)
    return summary
