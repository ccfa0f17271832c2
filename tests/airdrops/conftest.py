"""Airdrop helpers: members with points and a linked wallet, and a valid config to vary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AS_OF = NOW - timedelta(days=1)


def base_config(**changes) -> dict:
    config = {
        "name": "Season 1", "as_of": AS_OF.isoformat(), "total_tokens": "1000",
        "weights": {"points": 3, "reputation": 1}, "minimums": {}, "floor_tokens": "0", "cap_tokens": "0", "sqrt": False,
    }
    config.update(changes)
    return config


def add_member(name: str, *, points: int = 0, wallet: str | None = "new", at: datetime = AS_OF - timedelta(days=2), role: str = "member") -> tuple[int, str | None]:
    """A member created before `at`, `points` credited at `at`, and a wallet (a fresh one by default)."""
    from sapien.accounts import service as accounts
    from sapien.chain.wallet_models import Wallet
    from sapien.database import unit_of_work
    from sapien.ledger.service import credit

    user = accounts.sign_up(accounts.SignUp(username=name, email=f"{name}@example.org", password="correct horse battery"), now=at - timedelta(days=1), role=role)
    if points:
        credit(user.id, "points", points, kind="test", key=f"test:{name}:{at.isoformat()}", now=at)
    address = Account.create().address if wallet == "new" else wallet
    if address:
        with unit_of_work() as session:
            session.add(Wallet(user_id=user.id, address=address, linked_at=at))
    return user.id, address


@pytest.fixture
def config_data():
    return base_config()
