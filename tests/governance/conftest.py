"""Fixtures for governance tests: members with a level, a reputation and a stake, and a clock."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest

from sapien.i18n import TOKEN_UNIT
from tests.labeling.conftest import NOW

TOKEN = TOKEN_UNIT
HOUR = timedelta(hours=1)


@pytest.fixture
def ctx(app):
    """An app context with a (signed-out) request context, so translated messages can be read."""
    with app.test_request_context():
        yield app


_names = count(1)
_password_hash: list[str] = []


def make_user(username: str | None = None, role: str = "member") -> int:
    """A member, made through accounts' sign-up with one password hash computed once (hashing is slow on purpose)."""
    from sapien.accounts import service as accounts

    if not _password_hash:
        _password_hash.append(accounts.hash_password("correct horse battery"))
    username = username or f"voter{next(_names)}"
    user = accounts.sign_up(accounts.SignUp(username=username, email=f"{username}@example.org", password="correct horse battery"),
                            now=NOW, role=role, password_hash=_password_hash[0])
    return user.id


def give(user_id: int, *, xp: int = 0, stake: int = 0, reputation: int | None = None, tag: str = "setup") -> None:
    """Give a member XP (the ledger), stake (tokens staked through economy) and a reputation (quality's table)."""
    from sapien.database import dialect_insert, unit_of_work
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.quality.models import Reputation

    if xp:
        ledger.credit(user_id, "xp", xp, kind="test", key=f"test:{tag}:xp:{user_id}", now=NOW)
    if stake:  # tokens, then staked through economy's staking (a one-month lock)
        from sapien.economy import staking

        ledger.credit(user_id, "token", stake, kind="test", key=f"test:{tag}:token:{user_id}", now=NOW)
        staking.stake(user_id, stake, 1, now=NOW)
    if reputation is not None:
        with unit_of_work():
            statement = dialect_insert(Reputation).values(user_id=user_id, score=reputation, updated_at=NOW)
            db.session.execute(statement.on_conflict_do_update(index_elements=[Reputation.user_id], set_={"score": reputation}))


def proposer(username: str | None = None, stake: int = 2 * TOKEN) -> int:
    """A member who may propose: level 3 (300 XP), reputation 600, and `stake` staked."""
    user_id = make_user(username)
    give(user_id, xp=300, stake=stake, reputation=600)
    return user_id


def staker(stake: int, reputation: int = 500, username: str | None = None) -> int:
    user_id = make_user(username)
    give(user_id, stake=stake, reputation=reputation)
    return user_id


def rate_draft(value: int = 20_000, task_type: str = "text_classification"):
    from sapien.governance.proposals import ProposalDraft

    return ProposalDraft("parameter", "Double the reward rate", "More pay for more work.",
                         parameter_name=f"reward.rate.{task_type}", new_value=value)
