"""Items whose answers never converge.

An item that reaches its pack's maximum of answers without two people standing behind one answer
(`consensus.verifies`) gets no verified label. It is flagged (`Item.no_consensus_at`), retired so no
member is offered it again, and the pack's owner (the campaign's creator) is told once per item: what
the crowd could not settle needs a person: every answer still waiting for its reward goes to the
review queue (and, if no reviewer takes it in time, to the moderators'), so no answer waits forever. A
reviewer's accept is the second voice the item lacked: it gets its label, and the answers that agree
with it are paid.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from sapien.extensions import db
from sapien.labeling.models import Campaign, Item, Submission, TaskPack
from sapien.notifications.service import notify
from sapien.quality.models import Review


def flag_no_consensus(item: Item, pack: TaskPack, answers: int, now: datetime) -> bool:
    """Flag and retire the item and tell the pack's owner, in the caller's unit of work. True when the item
    was not flagged before (the notification is keyed by the item, so a retry never tells twice). A flagged
    item is always retired: the two are set together."""
    flagged = db.session.execute(
        update(Item)
        .where(Item.id == item.id, Item.no_consensus_at.is_(None))
        .values(no_consensus_at=now, status="retired")
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(item, ["no_consensus_at", "status"])
    if not flagged:
        return False
    _queue_waiting_answers_for_review(item, now)
    owner_id = db.session.scalar(select(Campaign.created_by).where(Campaign.id == pack.campaign_id))
    if owner_id is not None:
        notify(
            owner_id,
            "no_consensus",
            {"pack": pack.name, "item": item.external_id[:120], "answers": answers},
            link=f"/manage/packs/{pack.slug}/results",
            key=f"no-consensus:{item.id}",
            now=now,
        )
    return True


def _queue_waiting_answers_for_review(item: Item, now: datetime) -> None:
    """Each of the item's answers whose reward still waits gets a (real, not planted) review, unless it
    has one."""
    reviewed = select(Review.submission_id).where(Review.submission_id == Submission.id, Review.is_planted.is_(False))
    waiting = db.session.execute(
        select(Submission.id, Submission.pack_id, Submission.user_id)
        .where(Submission.item_id == item.id, Submission.status == "accepted", Submission.reward_state == "pending", ~reviewed.exists())
        .order_by(Submission.id)
    ).all()
    for submission_id, pack_id, user_id in waiting:
        db.session.add(Review(submission_id=submission_id, pack_id=pack_id, author_id=user_id, status="queued", created_at=now))
    if waiting:
        db.session.flush()


def clear_no_consensus(item: Item) -> None:
    """The item converged after all (a reviewer accepted one of its answers): it is no longer flagged."""
    if item.no_consensus_at is not None:
        item.no_consensus_at = None


def no_consensus_count(pack_id: int) -> int:
    """How many of the pack's items never converged (for the pack page and the results)."""
    return db.session.scalar(select(func.count(Item.id)).where(Item.pack_id == pack_id, Item.no_consensus_at.is_not(None))) or 0
