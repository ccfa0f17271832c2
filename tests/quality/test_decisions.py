"""The decision job: accepted answers are weighed off the answer's path, a batch at a time."""

from __future__ import annotations

from sqlalchemy import event, func, select

from sapien.extensions import db
from tests.quality.conftest import answer, decide_items, items_of, label, make_pack, make_user


def test_an_answer_waits_for_the_decision_job_which_verifies_its_item(ctx, tmp_path, config):
    from rq.registry import ScheduledJobRegistry

    from sapien.labeling.models import Item, Submission
    from sapien.quality.decisions import DECISION_JOB_ID
    from sapien.quality.models import VerifiedLabel
    from sapien.queue import get_queue

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2)
    item_id = items_of(pack.id)[0].id
    answered = [answer(make_user(), item_id, label("pos"), decide=False).submission_id for _ in range(2)]
    # The answers are in, accepted and pending; their item is not decided yet, and the job is scheduled once.
    assert db.session.get(Item, item_id).status == "open" and db.session.get(VerifiedLabel, item_id) is None
    rows = db.session.execute(select(Submission.reward_state, Submission.awaiting_decision).where(Submission.id.in_(answered))).all()
    assert rows == [("pending", True), ("pending", True)]
    assert ScheduledJobRegistry(queue=get_queue()).get_job_ids() == [DECISION_JOB_ID]

    assert decide_items() == 2
    assert db.session.get(Item, item_id).status == "retired" and db.session.get(VerifiedLabel, item_id).answer == label("pos")
    rows = db.session.execute(select(Submission.reward_state, Submission.awaiting_decision).where(Submission.id.in_(answered))).all()
    assert rows == [("verified", False), ("verified", False)]
    assert decide_items() == 0  # run again: nothing left to weigh


def test_a_batch_reads_a_packs_evidence_and_its_items_labels_once_for_all_its_items(ctx, tmp_path, config):
    from sapien.labeling.models import Item
    from sapien.quality.models import VerifiedLabel

    config(QUALITY_CONFIDENCE_THRESHOLD=0.5)
    pack = make_pack(tmp_path, items=6, gold=2, labels_per_item=2, max_labels_per_item=2)
    members = [make_user(), make_user()]
    for gold in items_of(pack.id, gold=True):  # the crowd's gold record, which every decision weighs
        for member in members:
            answer(member, gold.id, gold.gold_answer, decide=False)
    items = [item.id for item in items_of(pack.id, gold=False)]
    for item_id in items:
        for member in members:
            answer(member, item_id, label("pos"), decide=False)
    statements: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert decide_items() == 12
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    gold_reads = [statement for statement in statements if "CAST(items.gold_answer AS" in statement]
    assert len(gold_reads) == 1, gold_reads  # one read of the pack's gold answers for the six decisions
    label_reads = [statement for statement in statements if statement.startswith("SELECT verified_labels.")]
    assert len(label_reads) == 1, label_reads  # the six items' labels are looked up together, not one by one
    # Weighed one answer at a time, the same work took 151; 35 while each label read its row and its reviews.
    assert len(statements) <= 20, "\n".join(statements)
    assert db.session.scalar(select(func.count()).select_from(Item).where(Item.id.in_(items), Item.status == "retired")) == 6
    assert db.session.scalar(select(func.count()).select_from(VerifiedLabel).where(VerifiedLabel.item_id.in_(items))) == 6


def test_a_lost_decision_job_is_found_by_the_reconciler(ctx, tmp_path, redis_conn):
    from sapien.quality.decisions import DECISION_JOB_ID
    from sapien.queue import get_queue, reconcile

    pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2)
    answer(make_user(), items_of(pack.id)[0].id, label("pos"), decide=False)
    redis_conn.flushdb()  # the queue, the scheduled run and its arming are gone; the flag in the database is not
    counts = reconcile()
    assert counts["quality-decisions"] == 1 and DECISION_JOB_ID in get_queue().get_job_ids()
    assert decide_items() == 1
    assert reconcile()["quality-decisions"] == 0
