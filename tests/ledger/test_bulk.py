"""`credit_bulk`: many members, many keys, a few statements; each key once; one event per member, currency and kind."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sapien import events
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry

from .test_ledger import NOW, new_user


def test_bulk_credits_post_once_with_running_balances_and_grouped_events(app_ctx):
    ana, ben = new_user("ana"), new_user("ben")
    ledger.credit(ana, "points", 100, kind="signup_bonus", key="bonus:ana", now=NOW)
    credits = [
        ledger.BulkCredit(ana, "points", 10, "s:1:points", "labeling:text_classification"),
        ledger.BulkCredit(ana, "points", 20, "s:2:points", "labeling:text_classification"),
        ledger.BulkCredit(ana, "xp", 5, "s:1:xp", "labeling:text_classification"),
        ledger.BulkCredit(ben, "points", 7, "s:3:points", "labeling:bounding_boxes", "memo"),
    ]
    heard = []
    events.ledger_entry_posted.connect(receiver := lambda _s, **kw: heard.append(kw))
    try:
        created = ledger.credit_bulk(credits, now=NOW)
        assert set(created) == {one.key for one in credits}
        again = ledger.credit_bulk(credits + [ledger.BulkCredit(ben, "xp", 3, "s:3:xp", "labeling:bounding_boxes")], now=NOW)
        assert set(again) == {"s:3:xp"}  # the posted keys are skipped, the new one posted
    finally:
        events.ledger_entry_posted.disconnect(receiver)
    assert ledger.balance(ana, "points") == 130 == ledger.sum_of_entries(ana, "points")
    assert ledger.balance(ben, "points") == 7 and ledger.balance(ben, "xp") == 3 and ledger.balance(ana, "xp") == 5
    after = dict(db.session.execute(select(LedgerEntry.idempotency_key, LedgerEntry.balance_after)).all())
    assert (after["s:1:points"], after["s:2:points"]) == (110, 130)  # running balance in key order
    grouped = sorted((e["user_id"], e["currency"], e["amount"], e["balance_after"]) for e in heard)
    assert grouped == [(ana, "points", 30, 130), (ana, "xp", 5, 5), (ben, "points", 7, 7), (ben, "xp", 3, 3)]
    assert ledger.find_mismatched_balances() == []


def test_a_key_posted_for_another_movement_is_refused_and_nothing_moves(app_ctx):
    ana = new_user("ana")
    ledger.credit(ana, "points", 10, kind="x", key="k1", now=NOW)
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.credit_bulk([ledger.BulkCredit(ana, "points", 99, "k1", "x"), ledger.BulkCredit(ana, "points", 5, "k2", "x")], now=NOW)
    db.session.rollback()
    assert ledger.balance(ana, "points") == 10 and ledger.sum_of_entries(ana, "points") == 10
    with pytest.raises(ledger.LedgerError):
        ledger.credit_bulk([ledger.BulkCredit(ana, "points", 0, "k3", "x")], now=NOW)
