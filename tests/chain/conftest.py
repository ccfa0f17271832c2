"""Chain fixtures and wallet helpers: our contracts deployed once per test session on the session's anvil,
and for each test an anvil snapshot (reverted afterwards) with the addresses recorded in its fresh tables;
members, keys that sign like a wallet, the site a message is bound to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

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


@pytest.fixture(scope="session")
def deployed_addresses(app):
    """Deploy the four contracts once for the session through the real deploy path, then forget the
    rows (each test records the addresses in its own tables)."""
    from sqlalchemy import delete

    from sapien.chain.deploy import deploy_contracts
    from sapien.chain.models import ChainTransaction, ContractDeployment, SignerNonce
    from sapien.database import utcnow
    from sapien.extensions import db

    with app.app_context():
        addresses = {contract.name: contract.address for contract in deploy_contracts(utcnow())}
        for model in (ContractDeployment, ChainTransaction, SignerNonce):
            db.session.execute(delete(model))
        db.session.commit()
    return addresses


@dataclass
class Chain:
    w3: Web3
    chain_id: int
    addresses: dict[str, str]

    def contract(self, name: str):
        from sapien.chain.contracts import contract_at

        return contract_at(self.w3, name, self.addresses[name])

    def transact(self, function, sender: str):
        """Send `function` from an unlocked anvil account and return its receipt."""
        tx_hash = function.transact({"from": sender})
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)


@pytest.fixture
def chain(app_ctx, deployed_addresses):
    """The session's contracts, on a chain snapshot that is reverted after the test."""
    from sapien.chain.deploy import record_contracts
    from sapien.database import utcnow

    w3 = Web3(Web3.HTTPProvider(app_ctx.config["CHAIN_RPC_URL"]))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    record_contracts(w3.eth.chain_id, deployed_addresses, utcnow())
    try:
        yield Chain(w3, w3.eth.chain_id, dict(deployed_addresses))
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


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
