"""The ledger's invariants: idempotent postings, no negative balances, balance == sum of entries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sapien.accounts import service as accounts
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


PASSWORD_HASH = "scrypt:32768:8:1$notused$0"  # these members never sign in; skip the slow hash


def new_user(name: str) -> int:
    signup = accounts.SignUp(name, f"{name}@example.org", "")
    return accounts.sign_up(signup, now=NOW, password_hash=PASSWORD_HASH).id


def test_credit_then_debit_moves_balance_and_records_entries(app_ctx):
    ana = new_user("ana")
    ledger.credit(ana, "points", 500, kind="signup_bonus", key="bonus:ana", now=NOW)
    ledger.debit(ana, "points", 120, kind="conversion", key="convert:1", now=NOW)
    assert ledger.balance(ana, "points") == 380
    assert ledger.sum_of_entries(ana, "points") == 380
    assert [e.amount for e in ledger.recent_entries(ana)] == [-120, 500]
    assert ledger.recent_entries(ana)[0].balance_after == 380


def test_the_same_key_credits_once(app_ctx):
    ana = new_user("ana")
    first = ledger.credit(ana, "xp", 10, kind="labeling:text_classification", key="submission:7:xp", now=NOW)
    again = ledger.credit(ana, "xp", 10, kind="labeling:text_classification", key="submission:7:xp", now=NOW)
    assert first.created and not again.created and first.entry_id == again.entry_id
    assert ledger.balance(ana, "xp") == 10


def test_a_reused_key_for_another_amount_is_refused(app_ctx):
    ana = new_user("ana")
    ledger.credit(ana, "xp", 10, kind="k", key="k1", now=NOW)
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.credit(ana, "xp", 11, kind="k", key="k1", now=NOW)
    assert ledger.balance(ana, "xp") == 10


def test_debit_never_goes_negative_and_writes_nothing(app_ctx):
    ana = new_user("ana")
    ledger.credit(ana, "token", 5, kind="k", key="k1", now=NOW)
    with pytest.raises(ledger.InsufficientBalance):
        ledger.debit(ana, "token", 6, kind="k", key="k2", now=NOW)
    assert ledger.balance(ana, "token") == 5
    assert db.session.query(LedgerEntry).count() == 1


def test_debit_from_an_empty_account_is_refused(app_ctx):
    ana = new_user("ana")
    with pytest.raises(ledger.InsufficientBalance):
        ledger.debit(ana, "stake", 1, kind="k", key="k1", now=NOW)


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, "10"])
def test_amounts_are_positive_integers(app_ctx, amount):
    ana = new_user("ana")
    with pytest.raises(ledger.LedgerError):
        ledger.credit(ana, "points", amount, kind="k", key="k", now=NOW)


def test_unknown_currency_is_refused(app_ctx):
    ana = new_user("ana")
    with pytest.raises(ledger.LedgerError):
        ledger.credit(ana, "dollars", 5, kind="k", key="k", now=NOW)


def test_transfer_moves_both_legs_or_neither(app_ctx):
    ana, ben = new_user("ana"), new_user("ben")
    ledger.credit(ana, "token", 100, kind="k", key="seed", now=NOW)
    ledger.transfer(ana, ben, "token", 60, kind="gift", key="gift:1", now=NOW)
    with pytest.raises(ledger.InsufficientBalance):
        ledger.transfer(ana, ben, "token", 60, kind="gift", key="gift:2", now=NOW)
    assert (ledger.balance(ana, "token"), ledger.balance(ben, "token")) == (40, 60)
    assert ledger.find_mismatched_balances() == []


def test_posting_announces_after_commit(app_ctx):
    from sapien import events

    seen = []

    def listener(sender, **kwargs):
        seen.append((kwargs["user_id"], kwargs["currency"], kwargs["amount"]))

    events.ledger_entry_posted.connect(listener)
    try:
        ana = new_user("ana")
        ledger.credit(ana, "xp", 25, kind="k", key="k", now=NOW)
        ledger.credit(ana, "xp", 25, kind="k", key="k", now=NOW)  # a replay announces nothing
    finally:
        events.ledger_entry_posted.disconnect(listener)
    assert seen == [(ana, "xp", 25)]


def test_credit_many_posts_each_currency_once(app_ctx):
    from sapien import events

    seen = []

    def listener(sender, **kwargs):
        seen.append((kwargs["currency"], kwargs["amount"], kwargs["balance_after"]))

    ana = new_user("ana")
    ledger.credit(ana, "xp", 3, kind="k", key="earlier", now=NOW)
    credits = [ledger.Credit("points", 10, "reward:1:points", "memo"), ledger.Credit("xp", 5, "reward:1:xp", "memo")]
    events.ledger_entry_posted.connect(listener)
    try:
        first = ledger.credit_many(ana, credits, kind="k", now=NOW)
        again = ledger.credit_many(ana, credits, kind="k", now=NOW)  # a replay posts and announces nothing
    finally:
        events.ledger_entry_posted.disconnect(listener)
    assert [p.created for p in first] == [True, True] and [p.created for p in again] == [False, False]
    assert [p.entry_id for p in first] == [p.entry_id for p in again]
    assert seen == [("points", 10, 10), ("xp", 5, 8)]
    assert (ledger.balance(ana, "points"), ledger.balance(ana, "xp")) == (10, 8)
    assert ledger.find_mismatched_balances() == []


def test_credit_many_posts_only_the_keys_not_yet_posted(app_ctx):
    ana = new_user("ana")
    done = ledger.credit(ana, "xp", 5, kind="k", key="reward:2:xp", now=NOW)
    postings = ledger.credit_many(
        ana, [ledger.Credit("points", 10, "reward:2:points"), ledger.Credit("xp", 5, "reward:2:xp")], kind="k", now=NOW
    )
    assert [p.created for p in postings] == [True, False] and postings[1].entry_id == done.entry_id
    assert (ledger.balance(ana, "points"), ledger.balance(ana, "xp")) == (10, 5)
    assert ledger.find_mismatched_balances() == []


def test_credit_many_refuses_a_reused_key_and_bad_batches(app_ctx):
    ana = new_user("ana")
    ledger.credit(ana, "xp", 5, kind="k", key="reward:3:xp", now=NOW)
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.credit_many(ana, [ledger.Credit("points", 10, "reward:3:points"), ledger.Credit("xp", 6, "reward:3:xp")], kind="k", now=NOW)
    with pytest.raises(ValueError):
        ledger.credit_many(ana, [ledger.Credit("xp", 1, "a"), ledger.Credit("xp", 2, "b")], kind="k", now=NOW)
    with pytest.raises(ledger.LedgerError):
        ledger.credit_many(ana, [ledger.Credit("points", 0, "c")], kind="k", now=NOW)
    assert (ledger.balance(ana, "points"), ledger.balance(ana, "xp")) == (0, 5)
    assert db.session.query(LedgerEntry).count() == 1


operations = st.lists(
    st.tuples(
        st.sampled_from(["credit", "debit", "transfer"]),
        st.integers(min_value=0, max_value=2),  # account index
        st.integers(min_value=1, max_value=500),
        st.integers(min_value=0, max_value=15),  # key space small enough to force replays
    ),
    max_size=40,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_property_balances_equal_entries_and_never_go_negative(app_ctx, ops):
    from sqlalchemy import text

    db.session.execute(text("TRUNCATE ledger_entries, balances, users RESTART IDENTITY CASCADE"))
    db.session.commit()
    users = [new_user(f"prop{i}") for i in range(3)]
    for number, (op, who, amount, key) in enumerate(ops):
        try:
            if op == "credit":
                ledger.credit(users[who], "points", amount, kind="k", key=f"c{key}:{who}:{amount}", now=NOW)
            elif op == "debit":
                ledger.debit(users[who], "points", amount, kind="k", key=f"d{key}:{who}:{amount}", now=NOW)
            else:
                ledger.transfer(users[who], users[(who + 1) % 3], "points", amount, kind="k", key=f"t{number}", now=NOW)
        except ledger.LedgerError:
            pass
        for user in users:
            cached = ledger.balance(user, "points")
            assert cached >= 0
            assert cached == ledger.sum_of_entries(user, "points")
    assert ledger.find_mismatched_balances() == []


def _run_in_threads(app, count: int, work) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def runner(index: int):
        with app.app_context():
            barrier.wait()
            try:
                results[index] = work(index)
            except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
                results[index] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres_only
def test_concurrent_credits_with_one_key_credit_once_on_postgres(app):
    with app.app_context():
        ana = new_user("ana")
    results = _run_in_threads(app, 8, lambda i: ledger.credit(ana, "points", 50, kind="k", key="race:1", now=NOW))
    assert all(isinstance(r, ledger.Posting) for r in results), results
    assert sum(r.created for r in results) == 1
    with app.app_context():
        assert ledger.balance(ana, "points") == 50
        assert ledger.sum_of_entries(ana, "points") == 50


@pytest.mark.postgres_only
def test_concurrent_credits_with_distinct_keys_all_land_on_postgres(app):
    with app.app_context():
        ana = new_user("ana")
    _run_in_threads(app, 8, lambda i: ledger.credit(ana, "xp", 10, kind="k", key=f"many:{i}", now=NOW))
    with app.app_context():
        assert ledger.balance(ana, "xp") == 80 == ledger.sum_of_entries(ana, "xp")


@pytest.mark.postgres_only
def test_concurrent_credit_many_with_the_same_keys_credit_once_on_postgres(app):
    with app.app_context():
        ana = new_user("ana")
    credits = [ledger.Credit("points", 10, "race:2:points"), ledger.Credit("xp", 5, "race:2:xp")]
    results = _run_in_threads(app, 8, lambda i: ledger.credit_many(ana, credits, kind="k", now=NOW))
    assert all(isinstance(r, list) for r in results), results
    assert sum(p.created for r in results for p in r) == 2
    with app.app_context():
        assert (ledger.balance(ana, "points"), ledger.balance(ana, "xp")) == (10, 5)
        assert ledger.find_mismatched_balances() == []


@pytest.mark.postgres_only
def test_concurrent_debits_never_overdraw_on_postgres(app):
    with app.app_context():
        ana = new_user("ana")
        ledger.credit(ana, "token", 100, kind="k", key="seed", now=NOW)
    results = _run_in_threads(app, 6, lambda i: ledger.debit(ana, "token", 30, kind="k", key=f"spend:{i}", now=NOW))
    assert sum(isinstance(r, ledger.Posting) for r in results) == 3
    assert sum(isinstance(r, ledger.InsufficientBalance) for r in results) == 3
    with app.app_context():
        assert ledger.balance(ana, "token") == 10 == ledger.sum_of_entries(ana, "token")
