"""A member's answer and a reviewer's accept of the same member's earlier answer, at once (PostgreSQL row
locks): neither is picked as a deadlock victim, and once the settlement batch has paid the verified
answers, the member holds what every accepted answer earned.

The gold answer used to move the member's reputation (row lock) before paying (balance row locks), while
the reviewer's accept pays before it moves the reputation: each waited for the other's row and
PostgreSQL failed one with "deadlock detected" (a 500 in the soak run).
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tests.quality.conftest import NOW, answer, items_of, label, make_pack, make_user

ROUNDS = 6


@pytest.mark.postgres_only
def test_an_answer_and_a_review_of_the_same_member_never_deadlock(app, tmp_path, config):
    from sqlalchemy import select

    from sapien import events
    from sapien.extensions import db
    from sapien.labeling import leases, submissions
    from sapien.labeling.models import Submission
    from sapien.ledger import service as ledger
    from sapien.quality import reviews
    from sapien.quality.models import Review

    config(PLANTED_REVIEW_RATE_PERCENT=0)
    with app.test_request_context():
        pack = make_pack(tmp_path, items=ROUNDS, gold=ROUNDS, review_rate_percent=100)
        member, reviewer = make_user(), make_user(role="reviewer")
        pending = [answer(member, item.id, label("pos")) for item in items_of(pack.id, gold=False)]
        assert all(result.status == "pending_review" for result in pending)
        review_ids = [db.session.scalar(select(Review.id).where(Review.submission_id == result.submission_id)) for result in pending]
        gold_ids = [item.id for item in items_of(pack.id, gold=True)]
        db.session.remove()

    reviewing = threading.local()

    def hold_the_balances(_sender=None, **_kwargs):
        # The reviewer's accept has paid (the member's balance rows are locked) and now settles the item:
        # linger, so the member's answer arrives while the accept still has to move the reputation.
        if getattr(reviewing, "active", False):
            time.sleep(0.3)

    errors: list[BaseException] = []

    def decide(review_id: int, barrier: threading.Barrier) -> None:
        with app.app_context():
            reviewing.active = True
            try:
                barrier.wait(timeout=10)
                reviews.decide_review(review_id, reviewer, outcome="accepted", now=NOW)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    def submit(lease_id: int, barrier: threading.Barrier) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                time.sleep(0.05)  # the accept takes the balance rows first: the order that deadlocked
                result = submissions.submit_answer(member, lease_id, label("pos"), now=NOW)
                assert result.status == "accepted"
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    retries: list[str] = []
    watcher = logging.Handler(logging.WARNING)
    watcher.emit = lambda record: retries.append(record.getMessage())
    retry_log = logging.getLogger("sapien.database")
    retry_log.addHandler(watcher)
    was_disabled, retry_log.disabled = retry_log.disabled, False  # alembic's fileConfig disables existing loggers
    events.submission_settled.connect(hold_the_balances)
    try:
        for review_id, gold_id in zip(review_ids, gold_ids, strict=True):
            with app.test_request_context():
                reviews.claim_review(review_id, reviewer, NOW)
                lease_id = leases.lease_item(member, gold_id, NOW).id
                db.session.remove()
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=decide, args=(review_id, barrier)), threading.Thread(target=submit, args=(lease_id, barrier))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        events.submission_settled.disconnect(hold_the_balances)
        retry_log.removeHandler(watcher)
        retry_log.disabled = was_disabled

    assert not errors, errors
    # The lock order itself holds: the retry safety net never had to run a transaction again.
    assert not [message for message in retries if "running it again" in message], retries
    with app.app_context():
        from jobs.labeling import settle_rewards

        assert settle_rewards() == 2 * ROUNDS  # the gold verdicts and the reviewer's accepts verified the answers; the batch pays them
        paid = db.session.scalars(select(Submission).where(Submission.user_id == member, Submission.status == "accepted")).all()
        assert len(paid) == 2 * ROUNDS
        assert ledger.balance(member, "points") == sum(one.paid_points for one in paid) > 0
        assert ledger.find_mismatched_balances() == []
