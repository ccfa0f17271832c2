"""Rewards settle on verification: pending until the crowd (or a reviewer) verifies the answer, then paid in batches."""

from __future__ import annotations

from datetime import timedelta

from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from jobs.labeling import settle_rewards
from sapien.extensions import db
from sapien.labeling import leases, settlement, submissions
from sapien.labeling.models import Item, Submission
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry
from sapien.notifications.models import Notification
from sapien.queue import get_queue, reconcile
from tests.conftest import decide_items

from .conftest import NOW, make_pack, make_user


def answer(user_id: int, pack_id: int, label: str, at=NOW):
    """Answer the member's next item, then let the decision job weigh it (as a worker keeping up does)."""
    lease = leases.lease_next_item(user_id, pack_id, at)
    result = submissions.submit_answer(user_id, lease.id, {"labels": [label]}, now=at)
    decide_items(at)
    return result


def state_of(submission_id: int) -> Submission:
    db.session.expire_all()
    return db.session.get(Submission, submission_id)


def three_members_on_one_item(tmp_path, **settings):
    """One item, three members: two say "pos", the third "neg" (the item retires with "pos" at its third answer)."""
    pack = make_pack(tmp_path, items=1, labels_per_item=3, max_labels_per_item=3, reward_points=20, reward_xp=10, **settings)
    members = [make_user() for _ in range(3)]
    results = [answer(member, pack.id, label, NOW + timedelta(seconds=n)) for n, (member, label) in enumerate(zip(members, ["pos", "pos", "neg"], strict=True))]
    return pack, members, results


def test_an_answer_is_pending_until_verified_and_pays_nothing_before(ctx, tmp_path):
    pack = make_pack(tmp_path, items=2, labels_per_item=3, reward_points=10, reward_xp=4, difficulty="intermediate")
    member = make_user()
    result = answer(member, pack.id, "pos")
    assert (result.status, result.reward_state, result.points, result.xp) == ("accepted", "pending", 15, 6)
    assert ledger.balances(member)["points"] == 0 and ledger.balances(member)["xp"] == 0
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert settlement.pending_rewards(member) == settlement.PendingRewards(answers=1, points=15, xp=6)
    assert settle_rewards() == 0  # nothing verified yet: nothing paid


def test_junk_answers_earn_nothing_agreeing_ones_are_paid_once(ctx, tmp_path):
    pack, (ana, bob, junk), results = three_members_on_one_item(tmp_path)
    item_id = state_of(results[0].submission_id).item_id
    assert db.session.get(Item, item_id).status == "retired"
    states = [state_of(r.submission_id).reward_state for r in results]
    assert states == ["verified", "verified", "not_verified"]
    # The verification scheduled the settlement job under its one id, a moment later (so that it pays a batch).
    assert settlement.SETTLEMENT_JOB_ID in ScheduledJobRegistry(queue=get_queue()).get_job_ids()

    assert settle_rewards() == 2
    assert settle_rewards() == 0  # run twice: paid once
    for member in (ana, bob):
        assert ledger.balance(member, "points") == 20 == ledger.sum_of_entries(member, "points")
        assert ledger.balance(member, "xp") == 10 == ledger.sum_of_entries(member, "xp")
    assert ledger.balances(junk)["points"] == 0 and ledger.balances(junk)["xp"] == 0
    assert settlement.pending_rewards(junk).answers == 0
    junk_row = state_of(results[2].submission_id)
    assert junk_row.reward_state == "not_verified" and junk_row.paid_at is None
    paid = state_of(results[0].submission_id)
    assert paid.reward_state == "paid" and paid.paid_at is not None and (paid.paid_points, paid.paid_xp) == (20, 10)
    keys = set(db.session.scalars(select(LedgerEntry.idempotency_key).where(LedgerEntry.user_id == ana)))
    assert keys == {f"submission:{paid.id}:points", f"submission:{paid.id}:xp"}

    rows, _pages = submissions.my_submissions(junk)
    assert rows[0].reward == "not_verified" and rows[0].verified_answer == {"labels": ["pos"]}


def test_the_batch_notifies_each_member_once_and_moves_progression(ctx, tmp_path):
    from sapien.progression.models import MemberProgress

    pack = make_pack(tmp_path, items=3, labels_per_item=2, max_labels_per_item=2, reward_points=20, reward_xp=10)
    ana, bob = make_user(), make_user()
    for n in range(3):
        answer(ana, pack.id, "pos", NOW + timedelta(seconds=n))
    for n in range(3):
        answer(bob, pack.id, "pos", NOW + timedelta(seconds=10 + n))
    assert settle_rewards() == 6
    notes = db.session.execute(
        select(Notification.user_id, Notification.kind, Notification.params).where(Notification.kind.like("answer%")).order_by(Notification.user_id)
    ).all()
    assert notes == [(ana, "answers_verified_points", {"count": 3, "amount": 60}), (bob, "answers_verified_points", {"count": 3, "amount": 60})]
    progress = db.session.get(MemberProgress, ana)
    assert progress.labels_accepted == 3 and progress.current_streak == 1
    assert db.session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "badge", Notification.user_id == ana)) >= 1


def test_settlement_pays_in_batches_and_skips_rows_another_run_holds(ctx, tmp_path):
    pack = make_pack(tmp_path, items=5, labels_per_item=2, max_labels_per_item=2, reward_points=3, reward_xp=1)
    member, other = make_user(), make_user()  # two voices per item: no answer is verified on one person's word
    ids = [answer(member, pack.id, "pos", NOW + timedelta(seconds=n)).submission_id for n in range(5)]
    assert [state_of(i).reward_state for i in ids] == ["pending"] * 5
    ids += [answer(other, pack.id, "pos", NOW + timedelta(seconds=10 + n)).submission_id for n in range(5)]
    assert [state_of(i).reward_state for i in ids] == ["verified"] * 10
    report = settlement.settle_verified_rewards(now=NOW, batch_size=2)
    assert (report.answers, report.batches, report.members) == (10, 5, {member, other})
    assert ledger.balance(member, "points") == 15 == ledger.sum_of_entries(member, "points")
    assert ledger.balance(other, "points") == 15 == ledger.sum_of_entries(other, "points")
    # One notification per member per batch: the member's five answers were paid over three batches.
    member_notes = select(func.count()).select_from(Notification).where(Notification.kind.like("answer%"), Notification.user_id == member)
    assert db.session.scalar(member_notes) == 3


def test_review_accept_verifies_and_the_batch_pays(ctx, tmp_path, verify_and_settle):
    pack = make_pack(tmp_path, items=2, labels_per_item=3, reward_points=10, reward_xp=5)
    member = make_user()
    result = answer(member, pack.id, "pos")
    submissions.accept_submission(result.submission_id, now=NOW)
    assert state_of(result.submission_id).reward_state == "verified"
    assert ledger.balance(member, "points") == 0
    assert verify_and_settle(submission_ids=[]) == 1
    assert ledger.balance(member, "points") == 10 and ledger.balance(member, "xp") == 5


def test_review_reject_after_payment_reverses_and_before_payment_reverses_nothing(ctx, tmp_path, verify_and_settle):
    pack = make_pack(tmp_path, items=2, labels_per_item=3, reward_points=10, reward_xp=5)
    member = make_user()
    paid = answer(member, pack.id, "pos")
    unpaid = answer(member, pack.id, "neg", NOW + timedelta(seconds=1))
    verify_and_settle(submission_ids=[paid.submission_id])
    assert ledger.balance(member, "points") == 10

    submissions.reject_submission(paid.submission_id, reason="Off topic.", now=NOW + timedelta(minutes=1))
    submissions.reject_submission(unpaid.submission_id, reason="Off topic.", now=NOW + timedelta(minutes=1))
    assert ledger.balance(member, "points") == 0 == ledger.sum_of_entries(member, "points")
    reversals = db.session.scalars(select(LedgerEntry.idempotency_key).where(LedgerEntry.amount < 0)).all()
    assert sorted(reversals) == [f"submission:{paid.submission_id}:points:reversal", f"submission:{paid.submission_id}:xp:reversal"]
    assert state_of(unpaid.submission_id).reward_state == "void"
    assert settle_rewards() == 0
    states = {row.submission.id: row.reward for row in submissions.my_submissions(member)[0]}
    assert states == {paid.submission_id: "reversed", unpaid.submission_id: "rejected"}


def test_a_reject_before_the_batch_voids_the_verified_reward(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2, reward_points=10, reward_xp=5)
    member, other = make_user(), make_user()
    result = answer(member, pack.id, "pos")
    answer(other, pack.id, "pos", NOW + timedelta(seconds=1))
    assert state_of(result.submission_id).reward_state == "verified"
    submissions.reject_submission(result.submission_id, reason="Copied.", now=NOW)
    assert settle_rewards() == 1  # the other member's answer only
    assert ledger.balance(member, "points") == 0 and state_of(result.submission_id).reward_state == "void"


def test_a_right_gold_answer_is_verified_at_once_and_paid_by_the_next_batch(ctx, tmp_path):
    from sapien.labeling import packs

    pack = make_pack(tmp_path, items=0, gold=2, reward_points=10, reward_xp=5)
    member = make_user()
    first, second = [item.id for item in packs.pack_items(pack.id)]

    def answer_gold(item_id, label, at):
        lease = leases.lease_item(member, item_id, at)
        return submissions.submit_answer(member, lease.id, {"labels": [label]}, now=at)

    right = answer_gold(first, "pos", NOW)
    assert (right.status, right.reward_state, right.points, right.xp) == ("accepted", "verified", 10, 5)
    assert ledger.balance(member, "points") == 0  # the answer's own request posts nothing
    assert settlement.pending_rewards(member) == settlement.PendingRewards(1, 10, 5)
    assert settlement.SETTLEMENT_JOB_ID in ScheduledJobRegistry(queue=get_queue()).get_job_ids()  # armed by the verdict
    wrong = answer_gold(second, "neg", NOW + timedelta(seconds=1))
    assert (wrong.status, wrong.reward_state, wrong.points) == ("rejected", "void", 0)
    assert settle_rewards() == 1
    assert ledger.balance(member, "points") == 10 and ledger.balance(member, "xp") == 5
    paid = db.session.get(Submission, right.submission_id)
    assert (paid.reward_state, paid.paid_points) == ("paid", 10) and paid.verified_at is not None and paid.paid_at is not None
    assert settlement.pending_rewards(member) == settlement.PendingRewards(0, 0, 0)


def test_a_lost_settlement_job_is_found_by_the_reconciler(ctx, tmp_path, redis_conn):
    from sapien.queue import make_worker

    pack = make_pack(tmp_path, items=1, labels_per_item=2, max_labels_per_item=2, reward_points=7, reward_xp=2)
    member = make_user()
    result = answer(member, pack.id, "pos")
    answer(make_user(), pack.id, "pos", NOW + timedelta(seconds=1))
    redis_conn.flushdb()  # Redis lost the queued job
    assert settlement.SETTLEMENT_JOB_ID not in get_queue().get_job_ids()
    assert reconcile()["labeling-settlement"] == 1
    assert reconcile()["labeling-settlement"] == 1  # already queued: still one job
    assert get_queue().get_job_ids().count(settlement.SETTLEMENT_JOB_ID) == 1
    make_worker().work(burst=True)
    db.session.expire_all()
    assert ledger.balance(member, "points") == 7 and state_of(result.submission_id).reward_state == "paid"
    assert reconcile()["labeling-settlement"] == 0  # nothing left to pay


def test_dual_and_community_rewards_wait_for_verification_too(ctx, tmp_path, verify_and_settle):
    from sapien.i18n import TOKEN_UNIT
    from sapien.labeling.models import RevenueShare

    dual = make_pack(tmp_path, kind="dual", partner_token="ABC", items=1, labels_per_item=3, reward_points=10, reward_xp=2, partner_reward=3)
    community = make_pack(tmp_path, kind="community", items=1, labels_per_item=3, reward_xp=2, revenue_shares=4)
    member = make_user()
    answer(member, dual.id, "pos")
    answer(member, community.id, "pos")
    assert ledger.balance(member, "partner") == 0 and db.session.scalar(select(func.count()).select_from(RevenueShare)) == 0
    assert verify_and_settle() == 2
    assert ledger.balance(member, "partner") == 3 * TOKEN_UNIT
    assert db.session.scalar(select(RevenueShare.shares)) == 4


def test_a_finalized_pack_verifies_the_answers_of_its_open_items(ctx, tmp_path):
    from sapien.quality import batch

    pack = make_pack(tmp_path, items=1, labels_per_item=5, max_labels_per_item=5, reward_points=4, reward_xp=2)
    members = [make_user() for _ in range(3)]
    results = [answer(member, pack.id, label, NOW + timedelta(seconds=n)) for n, (member, label) in enumerate(zip(members, ["pos", "pos", "neg"], strict=True))]
    assert [state_of(r.submission_id).reward_state for r in results] == ["pending"] * 3  # the item is still open
    batch.aggregate_pack(pack.id, now=NOW + timedelta(minutes=1), finalize=True)
    assert [state_of(r.submission_id).reward_state for r in results] == ["verified", "verified", "not_verified"]
    assert settle_rewards() == 2
    assert [ledger.balance(member, "points") for member in members] == [4, 4, 0]
