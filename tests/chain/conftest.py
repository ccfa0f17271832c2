"""Helpers for wallet tests: members, keys that sign like a wallet, the site a message is bound to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ANVIL = 31337


def site():
    from sapien.chain.wallets import Site

    return Site(domain="sapien.test", uri="https://sapien.test/wallet")


def new_member(name: str) -> int:
    from sapien.accounts import service as accounts

    user = accounts.sign_up(accounts.SignUp(username=name, email=f"{name}@example.org", password="correct horse battery"), now=NOW)
    return user.id


def sign(account, text: str) -> str:
    """What a wallet's personal_sign answers: the EIP-191 signature of the text, in hex."""
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")


def signed_message(user_id: int, account, now=NOW, chain_id: int = ANVIL) -> tuple[str, str]:
    from sapien.chain import wallets

    text = wallets.start_link(user_id, account.address, chain_id, site(), now).text()
    return text, sign(account, text)


@pytest.fixture
def wallet_key():
    return Account.create()
