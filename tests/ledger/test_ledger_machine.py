"""A stateful property test of the ledger (Hypothesis `RuleBasedStateMachine`): random credits, spends,
transfers, reversals of earlier credits and replays of any key already used, against a plain model.

After every step: each cached balance equals the sum of its entries, no balance is negative, and both
equal the model's. CI runs a fixed (derandomized) profile; `HYPOTHESIS_PROFILE=nightly` runs a longer one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import text

from sapien.accounts import service as accounts
from sapien.extensions import db
from sapien.ledger import service as ledger

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
CURRENCIES = ("points", "token")
MEMBERS = 3

settings.register_profile(
    "ci", derandomize=True, max_examples=12, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "nightly", max_examples=300, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

amounts = st.integers(min_value=1, max_value=400)
members = st.integers(min_value=0, max_value=MEMBERS - 1)
currencies = st.sampled_from(CURRENCIES)


class LedgerMachine(RuleBasedStateMachine):
    """The model: {(member, currency): balance}, and every key posted with the movement it recorded."""

    @initialize()
    def fresh_members(self):
        db.session.execute(text("TRUNCATE ledger_entries, balances, users RESTART IDENTITY CASCADE"))
        db.session.commit()
        self.users = [
            accounts.sign_up(accounts.SignUp(f"member{i}", f"member{i}@example.org", ""), now=NOW, password_hash="x").id
            for i in range(MEMBERS)
        ]
        self.model = {(who, currency): 0 for who in range(MEMBERS) for currency in CURRENCIES}
        self.credits: list[tuple[int, str, int, str]] = []  # (member, currency, amount, key) of every earn
        self.reversed: set[str] = set()
        self.replays: list[tuple[str, tuple]] = []  # (operation, arguments) of every posting made
        self.serial = 0

    def _key(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}:{self.serial}"

    @rule(who=members, currency=currencies, amount=amounts)
    def earn(self, who, currency, amount):
        key = self._key("earn")
        posting = ledger.credit(self.users[who], currency, amount, kind="labeling:test", key=key, now=NOW)
        assert posting.created
        self.model[who, currency] += amount
        self.credits.append((who, currency, amount, key))
        self.replays.append(("credit", (self.users[who], currency, amount, key)))

    @rule(who=members, currency=currencies, amount=amounts)
    def spend(self, who, currency, amount):
        key = self._key("spend")
        try:
            ledger.debit(self.users[who], currency, amount, kind="spend", key=key, now=NOW)
        except ledger.InsufficientBalance:
            assert amount > self.model[who, currency]
            return
        assert amount <= self.model[who, currency]
        self.model[who, currency] -= amount
        self.replays.append(("debit", (self.users[who], currency, amount, key)))

    @rule(source=members, offset=st.integers(min_value=1, max_value=MEMBERS - 1), currency=currencies, amount=amounts)
    def transfer(self, source, offset, currency, amount):
        target = (source + offset) % MEMBERS
        key = self._key("transfer")
        try:
            ledger.transfer(self.users[source], self.users[target], currency, amount, kind="gift", key=key, now=NOW)
        except ledger.InsufficientBalance:
            assert amount > self.model[source, currency]
            return
        self.model[source, currency] -= amount
        self.model[target, currency] += amount

    @precondition(lambda self: self.credits)
    @rule(data=st.data())
    def reverse(self, data):
        """Reverse an earlier earn the way labeling does: a compensating debit of what is left, never below zero."""
        who, currency, amount, key = data.draw(st.sampled_from(self.credits))
        take = min(amount, self.model[who, currency])
        if key in self.reversed or not take:
            return
        ledger.debit(self.users[who], currency, take, kind="reversal", key=f"{key}:reversal", now=NOW)
        self.reversed.add(key)
        self.model[who, currency] -= take

    @precondition(lambda self: self.replays)
    @rule(data=st.data())
    def replay(self, data):
        """A retried job posts a key again: nothing moves, and the first posting comes back."""
        operation, (user_id, currency, amount, key) = data.draw(st.sampled_from(self.replays))
        posting = getattr(ledger, operation)(user_id, currency, amount, kind="replayed", key=key, now=NOW)
        assert not posting.created

    @invariant()
    def cached_balances_equal_their_entries_and_the_model(self):
        for who, user_id in enumerate(self.users):
            for currency in CURRENCIES:
                cached = ledger.balance(user_id, currency)
                assert cached >= 0
                assert cached == ledger.sum_of_entries(user_id, currency) == self.model[who, currency]

    @invariant()
    def no_balance_disagrees_and_no_key_is_posted_twice(self):
        assert ledger.find_mismatched_balances() == []
        duplicates = db.session.scalar(text("SELECT count(*) - count(DISTINCT idempotency_key) FROM ledger_entries"))
        assert duplicates == 0


@pytest.fixture
def machine_test(app_ctx):
    test = LedgerMachine.TestCase
    test.settings = PROFILE
    return test


def test_the_ledger_keeps_its_invariants_under_random_operations(machine_test):
    machine_test().runTest()
