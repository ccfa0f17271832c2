"""The decision job: accepted answers are weighed off the answer's path, a batch at a time.

An accepted, non-gold answer carries ``Submission.awaiting_decision`` from its INSERT (a reviewer's accept
sets it too), and labeling's `submission_settled` event makes this module queue the job after the commit.
The job runs a moment after the answer (`batch_jobs.run_soon`), so that one run weighs the answers given
meanwhile, and takes a batch of flagged answers (``FOR UPDATE SKIP LOCKED``: two runs never share one), clears
their flags, locks their items in id order and decides each item with `online.decide_item`. What the
decisions weigh — reputations, the members' gold answers and agreement with verified labels, the crowd's
gold answers — is read once per pack per batch rather than once per answer: that is what moving the
decision here buys (an answer's request no longer reads the pack's gold history). The evidence is as it
stood when the batch began: an item decided in a batch does not yet count as agreement evidence for the
other items of the same batch (it does for the next batch). A worker that keeps up takes batches of a
second's answers; the crowd replays run the job after every answer, so their decisions are unchanged.

The flags are the record of the work (DESIGN rule 2): a flushed queue or a killed worker leaves them set,
and the reconciler queues the job again while any is set. A decision is safe to make twice: the item lock
orders two runs, and a run that finds an item decided (or short of its target) leaves it as it is.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import bindparam, select, text, update

from sapien.batch_jobs import disarm, run_soon_after_commit
from sapien.database import built_once, retry_transaction, unit_of_work
from sapien.extensions import db
from sapien.labeling.models import Item, Submission, TaskPack
from sapien.quality import online
from sapien.queue import PendingWork, pending_work_source

DECISION_JOB = "jobs.quality.decide_items"
DECISION_JOB_ID = "quality-decide-items"
# Answers taken per transaction: the evidence reads are shared by a batch's items of one pack.
DECISION_BATCH = 500
# The partial index's predicate (`ix_submissions_awaiting_decision`), as literal SQL so that the planner uses it.
_AWAITING = text("submissions.awaiting_decision")


def on_submission_settled(_sender=None, **_ignored) -> None:
    """An answer was accepted (its flag is set in the same transaction): queue the job once that commits."""
    run_soon_after_commit(DECISION_JOB, job_id=DECISION_JOB_ID)


def decide_awaiting_items(*, now: datetime, batch_size: int = DECISION_BATCH) -> int:
    """Decide the items of every flagged answer, one batch per transaction, until none is left (the job's
    body); returns how many answers were weighed."""
    disarm(DECISION_JOB_ID)
    weighed = 0
    while True:
        count = decide_batch(now=now, limit=batch_size)
        if not count:
            return weighed
        weighed += count


@retry_transaction
def decide_batch(*, now: datetime, limit: int = DECISION_BATCH) -> int:
    """Weigh up to `limit` flagged answers in one transaction; returns how many were taken."""
    with unit_of_work() as session:
        flagged = session.execute(_flagged_statement(), {"limit": limit}).all()
        if not flagged:
            return 0
        session.execute(
            update(Submission).where(Submission.id.in_([row.id for row in flagged])).values(awaiting_decision=False)
            .execution_options(synchronize_session=False)
        )
        item_ids = sorted({row.item_id for row in flagged})
        # FOR NO KEY UPDATE, in id order: the submission rows hold KEY SHARE locks on their items through their
        # foreign key, and two runs (or a review's recomputation) lock shared items in the same order.
        items = list(session.scalars(
            select(Item).where(Item.id.in_(item_ids)).order_by(Item.id).with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ))
        answers: dict[int, list[Submission]] = defaultdict(list)
        for submission in session.scalars(
            select(Submission).where(Submission.item_id.in_(item_ids), Submission.status == "accepted").order_by(Submission.id)
        ):
            answers[submission.item_id].append(submission)
        by_pack: dict[int, list[Item]] = defaultdict(list)
        for item in items:
            by_pack[item.pack_id].append(item)
        writes = online.DecisionWrites()
        ready = {item.id: item for item in items if item.status == "open" and not item.is_gold and len(answers[item.id]) >= item.labels_target}
        # The labels the ready items may get and the reviews behind their answers, read once for the batch.
        reads = online.read_batch(sorted(ready), sorted(answer.id for item_id in ready for answer in answers[item_id]))
        for pack_id, pack_items in sorted(by_pack.items()):
            pack = session.get(TaskPack, pack_id)
            # One read of the evidence for the batch's ready items of this pack (none when nothing is ready).
            members = sorted({answer.user_id for item in pack_items if item.id in ready for answer in answers[item.id]})
            evidence = online.member_evidence(pack, members, with_agreement=online.needs_agreement(pack)) if members else None
            for item in pack_items:
                online.decide_item(item, pack, answers[item.id], now, evidence, writes, reads)
        writes.apply(now)
        return len(flagged)


@built_once
def _flagged_statement():
    return (
        select(Submission.id, Submission.item_id).where(_AWAITING).order_by(Submission.id)
        .limit(bindparam("limit")).with_for_update(skip_locked=True)
    )


@pending_work_source("quality-decisions")
def _pending_decisions():
    if db.session.scalar(select(Submission.id).where(_AWAITING).limit(1)) is not None:
        yield PendingWork(DECISION_JOB, (), DECISION_JOB_ID)
