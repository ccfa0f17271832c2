"""What airdrops need from the chain: linked wallets' activity as of a moment, a `MerkleDistributor`
per airdrop (deployed and funded through the outbox), claim call data and claim status.

Activity as of a time is read at the last block mined by then, so a snapshot re-run later reads the
same figures (DESIGN rule 4):
- the transaction count is the account's nonce at that block;
- the wallet's first appearance is the first block at which it held a balance or had sent anything
  (a binary search over historical state: O(log blocks) calls per wallet);
- its funding source is the sender of the first transfer into it in that block (None for a wallet
  funded at genesis or by a contract call we cannot attribute).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from web3 import Web3

from sapien.chain.client import signer_address, web3_client
from sapien.chain.contracts import call_data, contract_at, deploy_data
from sapien.chain.deploy import contract_address
from sapien.chain.models import ChainTransaction
from sapien.chain.outbox import advance, queue_transaction
from sapien.extensions import db


class PublishError(RuntimeError):
    pass


@dataclass(frozen=True)
class WalletActivity:
    tx_count: int
    first_seen: datetime | None
    funder: str | None


def _timestamp(w3: Web3, block: int) -> int:
    return int(w3.eth.get_block(block)["timestamp"])


def block_at(w3: Web3, moment: datetime) -> int:
    """The last block mined at or before `moment` (0 when the chain is younger)."""
    target = int(moment.timestamp())
    low, high = 0, w3.eth.block_number
    if _timestamp(w3, high) <= target:
        return high
    while low < high:
        middle = (low + high + 1) // 2
        if _timestamp(w3, middle) <= target:
            low = middle
        else:
            high = middle - 1
    return low


def _seen(w3: Web3, address: str, block: int) -> bool:
    return w3.eth.get_balance(address, block) > 0 or w3.eth.get_transaction_count(address, block) > 0


def _activity(w3: Web3, address: str, block: int) -> WalletActivity:
    address = Web3.to_checksum_address(address)
    tx_count = w3.eth.get_transaction_count(address, block)
    if not _seen(w3, address, block):
        return WalletActivity(tx_count, None, None)
    low, high = 0, block
    while low < high:
        middle = (low + high) // 2
        if _seen(w3, address, middle):
            high = middle
        else:
            low = middle + 1
    first_seen = datetime.fromtimestamp(_timestamp(w3, low), UTC)
    funder = None
    if low > 0:
        for transaction in w3.eth.get_block(low, full_transactions=True)["transactions"]:
            if transaction.get("to") and Web3.to_checksum_address(transaction["to"]) == address and transaction["value"] > 0:
                funder = Web3.to_checksum_address(transaction["from"])
                break
    return WalletActivity(tx_count, first_seen, funder)


def wallet_activity(addresses: list[str], as_of: datetime, progress=None, w3: Web3 | None = None) -> dict[str, WalletActivity]:
    """Address → its activity as of `as_of`. `progress(done)` is called after each wallet."""
    w3 = w3 or web3_client(timeout=10)
    block = block_at(w3, as_of)
    found = {}
    for done, address in enumerate(addresses, start=1):
        found[address] = _activity(w3, address, block)
        if progress is not None:
            progress(done)
    return found


def chain_id_now() -> int:
    return web3_client().eth.chain_id


def publish_distributor(*, airdrop_key: str, root: str, total: int, deadline: datetime, now: datetime, w3: Web3 | None = None) -> tuple[int, str]:
    """Deploy a `MerkleDistributor` for `root` and mint `total` SapienToken to it, each through the outbox
    under a key of its own (safe to call again: a confirmed step is not repeated). Returns (chain id,
    distributor address). The treasury that gets the clawback is the platform's signer."""
    w3 = w3 or web3_client(timeout=10)
    chain_id = w3.eth.chain_id
    genesis = w3.eth.get_block(0)["hash"].hex()[:16]
    token = contract_address(chain_id, "SapienToken")
    if token is None:
        raise PublishError("SapienToken is not deployed on this chain: run `flask chain deploy`")
    admin = signer_address()
    data = deploy_data("MerkleDistributor", Web3.to_checksum_address(token), bytes.fromhex(root.removeprefix("0x")), int(deadline.timestamp()), admin, admin)
    deploy_id = queue_transaction(key=f"airdrop:{chain_id}:{genesis}:{airdrop_key}:deploy", kind="deploy", chain_id=chain_id, to=None, data=data, now=now, extra={"contract": "MerkleDistributor"})
    if advance(deploy_id, now, w3) != "confirmed":
        raise PublishError(f"deploying the distributor failed: {_error(deploy_id)}")
    address = db.session.get(ChainTransaction, deploy_id, populate_existing=True).contract_address
    fund = call_data("SapienToken", "mint", Web3.to_checksum_address(address), int(total))
    fund_id = queue_transaction(key=f"airdrop:{chain_id}:{genesis}:{airdrop_key}:fund", kind="airdrop_fund", chain_id=chain_id, to=token, data=fund, now=now)
    if advance(fund_id, now, w3) != "confirmed":
        raise PublishError(f"funding the distributor failed: {_error(fund_id)}")
    return chain_id, Web3.to_checksum_address(address)


def _error(tx_id: int) -> str:
    row = db.session.get(ChainTransaction, tx_id, populate_existing=True)
    return row.last_error or row.status


def claim_call(distributor: str, account: str, amount: int, proof: list[str]) -> dict:
    """The transaction a member's wallet sends to claim: {"to", "data"}."""
    data = call_data("MerkleDistributor", "claim", Web3.to_checksum_address(account), int(amount), [bytes.fromhex(node.removeprefix("0x")) for node in proof])
    return {"to": Web3.to_checksum_address(distributor), "data": data}


@dataclass(frozen=True)
class DistributorState:
    total_claimed: int
    balance: int
    claim_deadline: int


def distributor_state(distributor: str, w3: Web3 | None = None) -> DistributorState:
    w3 = w3 or web3_client()
    contract = contract_at(w3, "MerkleDistributor", distributor)
    token = contract_at(w3, "SapienToken", contract.functions.token().call())
    return DistributorState(
        total_claimed=contract.functions.totalClaimed().call(), balance=token.functions.balanceOf(contract.address).call(),
        claim_deadline=contract.functions.claimDeadline().call(),
    )


def has_claimed(distributor: str, account: str, w3: Web3 | None = None) -> bool:
    w3 = w3 or web3_client()
    return bool(contract_at(w3, "MerkleDistributor", distributor).functions.isClaimed(Web3.to_checksum_address(account)).call())


def demo_wallet_address(seed: str) -> str:
    """A deterministic wallet for demo data: its key is keccak256("sapien-demo-wallet:" + seed), so
    whoever runs the demo can claim with it (never for real members)."""
    from eth_account import Account
    from eth_utils import keccak

    return Account.from_key(keccak(text=f"sapien-demo-wallet:{seed}")).address
