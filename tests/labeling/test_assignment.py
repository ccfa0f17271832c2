"""Leases, submissions and rewards: the rules a member would notice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT
from sapien.labeling import access as labeling_access
from sapien.labeling import claims, exams, leases, packs, submissions
from sapien.labeling import errors as labeling_errors
from sapien.labeling.models import Item, Lease, RevenueShare, Submission
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry
from tests.conftest import decide_items, verify_and_settle

from .conftest import NOW, make_pack, make_user

LABEL = {"labels": ["pos"]}


def do_one(user_id: int, pack_id: int, now=NOW, answer=LABEL):
    lease = leases.lease_next_item(user_id, pack_id, now)
    return lease, submissions.submit_answer(user_id, lease.id, answer, now=now)


def test_rewards_scale_with_difficulty_and_are_paid_once(ctx, tmp_path):
    for difficulty, points, xp in (("beginner", 10, 7), ("intermediate", 15, 10), ("advanced", 20, 14), ("expert", 30, 21)):
        pack = make_pack(tmp_path, items=1, difficulty=difficulty, reward_points=10, reward_xp=7, labels_per_item=1)
        user = make_user()
        _lease, result = do_one(user, pack.id)
        assert (result.status, result.points, result.xp) == ("accepted", points, xp), difficulty
        assert ledger.balance(user, "points") == 0  # pending until verified
        verify_and_settle(pack_id=pack.id)
        assert ledger.balance(user, "points") == points and ledger.balance(user, "xp") == xp
        keys = set(db.session.scalars(select(LedgerEntry.idempotency_key).where(LedgerEntry.user_id == user)))
        assert keys == {f"submission:{result.submission_id}:points", f"submission:{result.submission_id}:xp"}
        kinds = set(db.session.scalars(select(LedgerEntry.kind).where(LedgerEntry.user_id == user)))
        assert kinds == {"labeling:text_classification"}
        submissions.accept_submission(result.submission_id, now=NOW)  # already accepted and paid: nothing more is paid
        verify_and_settle(pack_id=pack.id)
        assert ledger.balance(user, "points") == points


def test_streak_multiplies_rewards(ctx, tmp_path):
    from tests.progression.helpers import paid_answer

    pack = make_pack(tmp_path, items=3, reward_points=100, reward_xp=0, labels_per_item=1)
    user = make_user()
    for day in range(4):  # paid answers on four days in a row
        paid_answer(user, NOW - timedelta(days=3 - day))
    _lease, result = do_one(user, pack.id)
    assert result.points == 115  # four consecutive days: 1 + 3 × 5 %


def test_dual_and_community_campaigns(ctx, tmp_path):
    dual = make_pack(tmp_path, kind="dual", partner_token="acme", items=1, labels_per_item=1, partner_reward=2, difficulty="intermediate")
    ana = make_user()
    _lease, result = do_one(ana, dual.id)
    verify_and_settle(pack_id=dual.id)
    assert ledger.balance(ana, "partner") == 3 * TOKEN_UNIT and result.partner == 3
    community = make_pack(tmp_path, kind="community", items=1, labels_per_item=1, reward_xp=5, revenue_shares=4, difficulty="advanced")
    ben = make_user()
    _lease, result = do_one(ben, community.id)
    verify_and_settle(pack_id=community.id)
    assert result.points == 0 and ledger.balance(ben, "points") == 0 and ledger.balance(ben, "xp") == 10
    share = db.session.scalar(select(RevenueShare).where(RevenueShare.user_id == ben))
    assert (share.shares, share.void) == (8, False)
    submissions.reject_submission(result.submission_id, reason="Spam", now=NOW)
    db.session.refresh(share)
    assert share.void is True and ledger.balance(ben, "xp") == 0


def test_reject_reverses_pay_and_frees_the_slot(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, labels_per_item=1, reward_points=10, reward_xp=10)
    user = make_user()
    _lease, result = do_one(user, pack.id)
    verify_and_settle(pack_id=pack.id)
    item = packs.pack_items(pack.id)[0]
    assert item.slots_taken == 1
    ledger.debit(user, "points", 4, kind="shop", key="spent", now=NOW)  # the member spent some of it
    submissions.reject_submission(result.submission_id, reason="Wrong label", now=NOW)
    submissions.reject_submission(result.submission_id, reason="Wrong label", now=NOW)  # twice: reversed once
    assert ledger.balance(user, "points") == 0 and ledger.balance(user, "xp") == 0  # never below zero
    entries = dict(db.session.execute(select(LedgerEntry.idempotency_key, LedgerEntry.amount).where(LedgerEntry.user_id == user)).all())
    assert entries[f"submission:{result.submission_id}:points:reversal"] == -6
    assert entries[f"submission:{result.submission_id}:xp:reversal"] == -10
    db.session.expire_all()
    submission = db.session.get(Submission, result.submission_id)
    assert submission.status == "rejected" and submission.rejection_reason == "Wrong label" and submission.reversed_at is not None
    assert db.session.get(Item, item.id).slots_taken == 0
    other = make_user()
    assert leases.lease_next_item(other, pack.id, NOW).item_id == item.id  # the freed slot goes to someone else
    with pytest.raises(labeling_errors.NoWorkLeft):
        leases.lease_next_item(user, pack.id, NOW)  # but never back to the same member


def test_pending_review_pays_on_accept_with_a_fix(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, labels_per_item=1, review_rate_percent=100, reward_points=10)
    user = make_user()
    _lease, result = do_one(user, pack.id)
    assert (result.status, result.reward_state, result.points) == ("pending_review", "pending", 10) and ledger.balance(user, "points") == 0
    with pytest.raises(labeling_errors.InvalidAnswer):
        submissions.accept_submission(result.submission_id, now=NOW, fixed_answer={"labels": ["nope"]})
    submissions.accept_submission(result.submission_id, now=NOW, fixed_answer={"labels": ["neg"]})
    submission = db.session.get(Submission, result.submission_id)
    assert submission.status == "accepted" and submission.fixed_answer == {"labels": ["neg"]}
    assert submission.reward_state == "verified" and ledger.balance(user, "points") == 0  # the reviewer's accept verifies it
    verify_and_settle(submission_ids=[])
    assert ledger.balance(user, "points") == 10


def test_submit_errors(ctx, tmp_path):
    pack = make_pack(tmp_path, items=3, lease_minutes=10)
    ana, ben = make_user(), make_user()
    lease = leases.lease_next_item(ana, pack.id, NOW)
    with pytest.raises(labeling_errors.LabelingNotFound):
        submissions.submit_answer(ben, lease.id, LABEL, now=NOW)
    with pytest.raises(labeling_errors.LabelingNotFound):
        submissions.submit_answer(ana, 999_999, LABEL, now=NOW)
    with pytest.raises(labeling_errors.InvalidAnswer):
        submissions.submit_answer(ana, lease.id, {"labels": ["nah"]}, now=NOW)
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 0
    submissions.submit_answer(ana, lease.id, LABEL, now=NOW)
    with pytest.raises(labeling_errors.AlreadySubmitted, match="already answered"):
        submissions.submit_answer(ana, lease.id, LABEL, now=NOW)
    late = leases.lease_next_item(ana, pack.id, NOW)
    with pytest.raises(labeling_errors.LeaseExpired, match="ran out"):
        submissions.submit_answer(ana, late.id, LABEL, now=NOW + timedelta(minutes=11))


def test_lease_expiry_returns_the_slot(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, labels_per_item=1, lease_minutes=10)
    ana, ben = make_user(), make_user()
    lease = leases.lease_next_item(ana, pack.id, NOW)
    with pytest.raises(labeling_errors.NoWorkLeft):
        leases.lease_next_item(ben, pack.id, NOW)
    assert leases.expire_leases(NOW + timedelta(minutes=5)) == 0
    assert leases.expire_leases(NOW + timedelta(minutes=10)) == 1
    assert db.session.get(Lease, lease.id).status == "expired"
    assert leases.lease_next_item(ben, pack.id, NOW + timedelta(minutes=10)).item_id == lease.item_id
    with pytest.raises(labeling_errors.NoWorkLeft):  # the abandoned item is not handed back to the member who left it
        leases.lease_next_item(ana, pack.id, NOW + timedelta(minutes=11))


def test_a_members_own_expired_lease_is_released_when_they_come_back(ctx, tmp_path):
    pack = make_pack(tmp_path, items=2, labels_per_item=1, lease_minutes=10)
    ana = make_user()
    first = leases.lease_next_item(ana, pack.id, NOW)
    second = leases.lease_next_item(ana, pack.id, NOW + timedelta(minutes=30))
    assert second.id != first.id and second.item_id != first.item_id
    assert db.session.get(Item, first.item_id).slots_taken == 0


def test_never_the_same_item_twice_and_resume(ctx, tmp_path):
    pack = make_pack(tmp_path, items=4, labels_per_item=3)
    ana = make_user()
    seen = []
    for _ in range(4):
        lease = leases.lease_next_item(ana, pack.id, NOW)
        assert leases.lease_next_item(ana, pack.id, NOW).id == lease.id  # an unanswered item is resumed
        seen.append(lease.item_id)
        submissions.submit_answer(ana, lease.id, LABEL, now=NOW)
    assert len(set(seen)) == 4
    with pytest.raises(labeling_errors.NoWorkLeft):
        leases.lease_next_item(ana, pack.id, NOW)
    with pytest.raises(labeling_errors.NoWorkLeft, match="same item twice"):
        leases.lease_item(ana, seen[0], NOW)


def test_items_closest_to_done_come_first_then_the_oldest(ctx, tmp_path):
    pack = make_pack(tmp_path, items=3, labels_per_item=3)
    first, second = make_user(), make_user()
    started = leases.lease_next_item(first, pack.id, NOW).item_id
    assert leases.lease_next_item(second, pack.id, NOW).item_id == started  # one slot taken beats none
    third = make_user()
    leases.lease_next_item(third, pack.id, NOW)
    fourth = make_user()
    oldest_untouched = db.session.scalar(select(func.min(Item.id)).where(Item.pack_id == pack.id, Item.id != started))
    assert leases.lease_next_item(fourth, pack.id, NOW).item_id == oldest_untouched  # the started item is full


def test_the_next_item_is_read_in_index_order_not_sorted(ctx, tmp_path):
    """A big pack must not sort every open item for each answer: the claim walks `ix_items_pack_open`."""
    pack = make_pack(tmp_path, items=30)
    compiled = claims.claim_ordinary_statement().compile(dialect=db.session.get_bind().dialect)
    values = {**compiled.params, "claimant_id": make_user(), "claim_pack_id": pack.id}
    db.session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table would be scanned whole anyway
    plan = "\n".join(row[0] for row in db.session.connection().exec_driver_sql("EXPLAIN " + str(compiled), values))
    db.session.rollback()
    assert "ix_items_pack_open" in plan
    assert "Sort" not in plan


def test_daily_cap_per_utc_day(ctx, tmp_path):
    pack = make_pack(tmp_path, items=5, daily_cap=2)
    ana = make_user()
    do_one(ana, pack.id)
    do_one(ana, pack.id)
    with pytest.raises(labeling_errors.DailyCapReached, match="today's 2 items"):
        leases.lease_next_item(ana, pack.id, NOW)
    tomorrow = NOW.replace(hour=0, minute=1) + timedelta(days=1)
    do_one(ana, pack.id, now=tomorrow)


def test_skipping_releases_the_item(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1, labels_per_item=1)
    ana, ben = make_user(), make_user()
    lease = leases.lease_next_item(ana, pack.id, NOW)
    with pytest.raises(labeling_errors.LabelingNotFound):
        leases.release_lease(ben, lease.id, now=NOW)
    leases.release_lease(ana, lease.id, now=NOW)
    assert leases.lease_next_item(ben, pack.id, NOW).item_id == lease.item_id


def test_gold_is_mixed_in_at_the_pack_rate(ctx, tmp_path):
    pack = make_pack(tmp_path, items=300, gold=300, gold_rate_percent=25, labels_per_item=1, daily_cap=1000)
    ana = make_user()
    gold = 0
    rounds = 160
    for _ in range(rounds):
        lease = leases.lease_next_item(ana, pack.id, NOW)
        result = submissions.submit_answer(ana, lease.id, LABEL, now=NOW)
        gold += result.feedback is not None
    assert 0.13 * rounds <= gold <= 0.37 * rounds, gold
    # Gold items take no slots: every member can answer each of them.
    assert db.session.scalar(select(func.max(Item.slots_taken)).where(Item.is_gold.is_(True))) == 0


def test_gold_draw_gives_each_open_gold_item_once_from_a_random_start(ctx, tmp_path):
    pack = make_pack(tmp_path, items=0, gold=12, exam=2, labels_per_item=1, daily_cap=1000)
    gold = [item for item in packs.pack_items(pack.id) if item.is_gold and not item.is_exam]
    gold[5].status = "retired"
    db.session.commit()
    drawable = {item.id for item in gold} - {gold[5].id}
    ana = make_user()
    drawn = []
    for _ in drawable:  # the draw itself: `lease_next_item` mixes gold in with ordinary items at the pack's rate
        item = claims.pick_gold(ana, pack)
        drawn.append(item.id)
        leases.lease_item(ana, item.id, NOW)
    assert sorted(drawn) == sorted(drawable)  # each open gold item once; never a retired or an exam item
    assert claims.pick_gold(ana, pack) is None
    first_draws = {claims.pick_gold(make_user(), pack).id for _ in range(20)}
    assert len(first_draws) > 1  # members do not all start on the same item


def test_gold_feedback(ctx, tmp_path):
    pack = make_pack(tmp_path, items=0, gold=2, labels_per_item=1, reward_points=10)
    ana = make_user()
    right, wrong = [item for item in packs.pack_items(pack.id)]
    result = submissions.submit_answer(ana, leases.lease_item(ana, right.id, NOW).id, LABEL, now=NOW)
    assert result.status == "accepted" and result.feedback.correct and result.points == 10
    result = submissions.submit_answer(ana, leases.lease_item(ana, wrong.id, NOW).id, {"labels": ["neg"]}, now=NOW)
    assert result.status == "rejected" and not result.feedback.correct and result.points == 0
    assert result.feedback.expected == {"labels": ["pos"]} and result.feedback.explanation == "Great is positive."


def test_unlock_requirements_and_reasons(ctx, tmp_path):
    pack = make_pack(tmp_path, items=2, min_level=3, min_reputation=600, min_stake=2)
    ana = make_user()
    access = labeling_access.pack_access(ana, pack.id, NOW)
    assert not access.unlocked
    assert [str(reason) for reason in access.reasons] == [
        "Reach level 3 (you are level 1).",
        "Reach a reputation of 600 (yours is 500).",
        "Stake at least 2 tokens (you have 0 staked).",
    ]
    with pytest.raises(labeling_errors.PackLocked, match="Reach level 3"):
        leases.lease_next_item(ana, pack.id, NOW)
    ledger.credit(ana, "xp", 300, kind="test", key="xp", now=NOW)
    ledger.credit(ana, "stake", 2 * TOKEN_UNIT, kind="test", key="stake", now=NOW)
    from sapien.quality.reputation import record_reputation

    for n in range(6):
        record_reputation(ana, key=f"t{n}", reason="gold", good=True, now=NOW)
    assert labeling_access.pack_access(ana, pack.id, NOW).unlocked
    leases.lease_next_item(ana, pack.id, NOW)


@pytest.mark.postgres_only
def test_last_slot_race_exactly_one_wins(app, tmp_path):
    """Two members race for the only open slot, through both entry points: exactly one gets it."""
    for use_specific_item in (False, True):
        with app.test_request_context():
            pack = make_pack(tmp_path, items=1, labels_per_item=2)
            first, racers = make_user(), [make_user(), make_user()]
            item_id = packs.pack_items(pack.id)[0].id
            leases.lease_next_item(first, pack.id, NOW)  # one of two slots taken: one left
            pack_id = pack.id
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def race(user_id: int, barrier=barrier, outcomes=outcomes, specific=use_specific_item, item_id=item_id, pack_id=pack_id) -> None:
            with app.test_request_context():
                barrier.wait()
                try:
                    if specific:
                        leases.lease_item(user_id, item_id, NOW)
                    else:
                        leases.lease_next_item(user_id, pack_id, NOW)
                    outcomes.append("won")
                except labeling_errors.NoWorkLeft:
                    outcomes.append("lost")
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=race, args=(user_id,)) for user_id in racers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["lost", "won"], (use_specific_item, outcomes)
        with app.test_request_context():
            assert db.session.get(Item, item_id).slots_taken == 2
            assert db.session.scalar(select(func.count()).select_from(Lease).where(Lease.item_id == item_id)) == 2


def test_exam_unlocks_the_pack_and_retakes_wait(ctx, tmp_path, app):
    pack = make_pack(tmp_path, items=2, exam=4, exam_required=True, exam_size=2, exam_pass_percent=100)
    ana = make_user()
    assert [str(r) for r in labeling_access.pack_access(ana, pack.id, NOW).reasons] == ["Pass the pack's qualification exam."]
    with pytest.raises(labeling_errors.PackLocked):
        leases.lease_next_item(ana, pack.id, NOW)
    attempt = exams.start_exam(ana, pack.id, NOW)
    assert exams.start_exam(ana, pack.id, NOW).id == attempt.id  # resumed
    first, second = attempt.item_ids
    with pytest.raises(labeling_errors.ExamError, match="in order"):
        exams.answer_exam_item(ana, attempt.id, second, {"labels": ["neg"]}, now=NOW)
    with pytest.raises(labeling_errors.InvalidAnswer):
        exams.answer_exam_item(ana, attempt.id, first, {"labels": ["nope"]}, now=NOW)
    exams.answer_exam_item(ana, attempt.id, first, {"labels": ["pos"]}, now=NOW)  # wrong: exam items are "neg"
    attempt = exams.answer_exam_item(ana, attempt.id, second, {"labels": ["neg"]}, now=NOW)
    assert attempt.finished_at is not None and attempt.correct == 1 and attempt.passed is False
    with pytest.raises(labeling_errors.ExamError, match="retake"):
        exams.start_exam(ana, pack.id, NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=13)
    retake = exams.start_exam(ana, pack.id, later)
    for item_id in retake.item_ids:
        retake = exams.answer_exam_item(ana, retake.id, item_id, {"labels": ["neg"]}, now=later)
    assert retake.passed is True
    assert labeling_access.pack_access(ana, pack.id, later).unlocked
    lease = leases.lease_next_item(ana, pack.id, later)
    assert not db.session.get(Item, lease.item_id).is_exam  # exam items never come up as work
    other = make_user()
    with pytest.raises(labeling_errors.LabelingNotFound):
        exams.answer_exam_item(other, retake.id, retake.item_ids[0], {"labels": ["neg"]}, now=later)


def test_agreeing_answers_verify_and_retire_the_item(ctx, tmp_path):
    from sapien.quality.models import VerifiedLabel

    pack = make_pack(tmp_path, items=1, labels_per_item=3, max_labels_per_item=3)
    item_id = packs.pack_items(pack.id)[0].id
    for _ in range(3):
        do_one(make_user(), pack.id)
    assert db.session.get(Item, item_id).status == "open"  # decided off the answers' path, by the job
    assert decide_items() == 3
    label = db.session.get(VerifiedLabel, item_id)
    assert label is not None and label.answer == LABEL and label.labels_used == 3
    assert db.session.get(Item, item_id).status == "retired"
    assert len(submissions.item_answers(item_id)) == 3
