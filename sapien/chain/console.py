"""The moderators' chain console: the signer, the outbox, our contracts, the payout batches, and retries.

A retry never sends anything itself: an unfinished transaction gets its job queued again (the outbox
takes it on from wherever it stopped); a failed one is signed afresh only where that cannot pay twice.
A badge mint's token id is fixed, so a second mint of it reverts: its failed transaction may go again
(`events.chain_transaction_retried` lets the mint request follow). A failed payout batch was refunded to
its members (sapien/chain/payouts.py), so its transaction is never sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from sapien import events
from sapien.chain.client import signer_address, web3_client
from sapien.chain.models import ChainTransaction, ContractDeployment, SignerNonce
from sapien.chain.outbox import ChainUnavailable, node_call
from sapien.chain.payout_models import PayoutBatch
from sapien.chain.pending import enqueue_send, enqueue_settlement
from sapien.chain.registry import ChainInfo, chain_info
from sapien.database import after_commit, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db

SHOWN = 50  # transactions listed per state
RETRYABLE_FAILED_KINDS = ("badge_mint", "badge_burn", "deploy")


class ConsoleError(DomainError):
    pass


@dataclass(frozen=True)
class SignerView:
    address: str
    chain_id: int | None
    balance_wei: int | None  # None: the chain did not answer
    nonce_on_chain: int | None
    next_nonce: int | None  # what the outbox's allocator hands out next

    @property
    def answered(self) -> bool:
        return self.balance_wei is not None


def signer_view() -> SignerView:
    address = signer_address()
    w3 = web3_client(timeout=2)
    try:
        chain_id = node_call(lambda: w3.eth.chain_id)
        balance = node_call(lambda: w3.eth.get_balance(address))
        nonce = node_call(lambda: w3.eth.get_transaction_count(address, "pending"))
    except ChainUnavailable:
        chain_id = balance = nonce = None
    next_nonce = None
    if chain_id is not None:
        next_nonce = db.session.scalar(select(SignerNonce.next_nonce).where(SignerNonce.chain_id == chain_id, SignerNonce.address == address))
    return SignerView(address, chain_id, balance, nonce, next_nonce)


@dataclass(frozen=True)
class OutboxView:
    queued: list[ChainTransaction]  # pending or signed: not broadcast yet
    sent: list[ChainTransaction]
    failed: list[ChainTransaction]
    counts: dict[str, int]


def outbox_view() -> OutboxView:
    def latest(*statuses: str) -> list[ChainTransaction]:
        return list(db.session.scalars(
            select(ChainTransaction).where(ChainTransaction.status.in_(statuses)).order_by(ChainTransaction.id.desc()).limit(SHOWN)
        ))

    counts = dict(db.session.execute(select(ChainTransaction.status, func.count()).group_by(ChainTransaction.status)).all())
    return OutboxView(latest("pending", "signed"), latest("sent"), latest("failed"), counts)


@dataclass(frozen=True)
class ContractsOnChain:
    chain: ChainInfo
    contracts: list[ContractDeployment]


def contracts_by_chain() -> list[ContractsOnChain]:
    rows = list(db.session.scalars(select(ContractDeployment).order_by(ContractDeployment.chain_id, ContractDeployment.name)))
    chains: dict[int, list[ContractDeployment]] = {}
    for row in rows:
        chains.setdefault(row.chain_id, []).append(row)
    return [ContractsOnChain(chain_info(chain_id), found) for chain_id, found in chains.items()]


def recent_batches(limit: int = 20) -> list[tuple[PayoutBatch, ChainTransaction]]:
    return [tuple(row) for row in db.session.execute(
        select(PayoutBatch, ChainTransaction).join(ChainTransaction, ChainTransaction.id == PayoutBatch.tx_id)
        .order_by(PayoutBatch.id.desc()).limit(limit)
    )]


def retry_transaction(tx_id: int, now: datetime) -> str:
    """Queue an unfinished transaction's job again, or sign a failed one afresh where that is safe.
    Returns the transaction's status afterwards."""
    with unit_of_work() as session:
        row = session.get(ChainTransaction, tx_id, with_for_update=True)
        if row is None:
            raise ConsoleError(_l("There is no such transaction."))
        if row.status == "confirmed":
            raise ConsoleError(_l("That transaction is confirmed: there is nothing to retry."))
        if row.status == "failed":
            if row.kind == "payout":
                raise ConsoleError(_l("A failed payout batch was refunded to its members; it is never sent again. They can withdraw again."))
            if row.kind not in RETRYABLE_FAILED_KINDS:
                raise ConsoleError(_l("Transactions of this kind are not retried from here."))
            row.status, row.signer, row.nonce, row.raw_tx, row.tx_hash = "pending", None, None, None, None
            row.block_number, row.last_error, row.updated_at = None, "retried from the chain console", now
            session.flush()
            events.chain_transaction_retried.send(None, tx_id=row.id, kind=row.kind, now=now)
        kind = row.kind
        after_commit(lambda: enqueue_send(tx_id))
        if kind == "payout":
            after_commit(enqueue_settlement)
        return row.status
