"""Chain helpers: members, keys that sign like a wallet, the site a message is bound to, anvil's accounts, and
a `wallets` fixture that answers `events.wallet_of`. The contracts (`deployed_addresses`, once per session)
and the per-test `chain` snapshot live in tests/conftest.py, so tests beyond tests/chain (the fault tests'
real workers) use the same deployment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from sapien import events

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


# anvil's well-known development accounts (the first one is the platform's signer, CHAIN_SIGNER_KEY).
MEMBER_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER_ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
THIRD_ADDRESS = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


@pytest.fixture
def wallets():
    """Answers `events.wallet_of` from a dict the test fills (in place of the wallets area's receiver)."""
    linked: dict[int, str] = {}

    def wallet_of(_sender=None, *, user_id: int):
        return linked.get(user_id)

    connected = list(events.wallet_of.receivers.values())
    for receiver in connected:
        events.wallet_of.disconnect(receiver)
    events.wallet_of.connect(wallet_of, weak=False)
    try:
        yield linked
    finally:
        events.wallet_of.disconnect(wallet_of)
        for receiver in connected:
            events.wallet_of.connect(receiver, weak=False)
