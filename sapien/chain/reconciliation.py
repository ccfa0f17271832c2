"""The payout reconciliation: the ledger against the chain, per batch and per member, to the base unit.

The three records that must agree:
- the ledger: what each member's `withdrawal` debits took, less what `withdrawal_refund` credits gave back;
- the withdrawals: settled on chain (confirmed), still in flight (pending, batched, sent) or refunded;
- the chain: the `Transfer` events (mints, from the zero address) of the batch's token in each batch
  transaction's receipt, and the payout contract's record of the batch id as paid.

Per batch: a confirmed batch's receipt pays each address exactly what its withdrawals asked for, and the
contract records it paid; a failed batch paid nothing and every withdrawal in it was refunded. Per member:
the ledger's net withdrawal equals confirmed plus in flight, and the chain paid them exactly what was
confirmed. Anything else is listed as a mismatch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from eth_utils import keccak, to_checksum_address
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from sapien.accounts.models import User
from sapien.chain.client import web3_client
from sapien.chain.contracts import contract_at
from sapien.chain.models import ChainTransaction
from sapien.chain.outbox import ChainUnavailable, node_call
from sapien.chain.payout_models import PayoutBatch, Withdrawal
from sapien.extensions import db
from sapien.ledger.models import LedgerEntry

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
ZERO_TOPIC = "0x" + "00" * 32
IN_FLIGHT = ("pending", "batched", "sent")


@dataclass(frozen=True)
class BatchCheck:
    batch_id: int
    currency: str
    status: str
    tx_hash: str | None
    recipients: int
    ledger_total: int  # what its withdrawals asked for
    chain_total: int | None  # what its receipt minted (None: no receipt, or the chain did not answer)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class MemberCheck:
    user_id: int
    username: str
    currency: str
    withdrawn: int  # the ledger's net withdrawal debits
    confirmed: int
    in_flight: int
    on_chain: int | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class PayoutReconciliation:
    checked_at: datetime
    chain_answered: bool = True
    batches: list[BatchCheck] = field(default_factory=list)
    members: list[MemberCheck] = field(default_factory=list)

    @property
    def mismatched_batches(self) -> list[BatchCheck]:
        return [check for check in self.batches if not check.ok]

    @property
    def mismatched_members(self) -> list[MemberCheck]:
        return [check for check in self.members if not check.ok]

    @property
    def ok(self) -> bool:
        return self.chain_answered and not self.mismatched_batches and not self.mismatched_members


def _minted_by(receipt, token_address: str) -> dict[str, int]:
    """{recipient: amount} of the token's mints in one receipt (Transfer from the zero address)."""
    paid: dict[str, int] = defaultdict(int)
    for log in receipt["logs"]:
        topics = [topic.to_0x_hex() if hasattr(topic, "to_0x_hex") else str(topic) for topic in log["topics"]]
        if log["address"].lower() != token_address.lower() or len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
            continue
        if topics[1] != ZERO_TOPIC:
            continue
        recipient = to_checksum_address("0x" + topics[2][-40:])
        data = log["data"]
        paid[recipient] += int.from_bytes(bytes(data), "big") if not isinstance(data, str) else int(data, 16)
    return dict(paid)


def _receipt(w3: Web3, tx_hash: str):
    try:
        return node_call(lambda: w3.eth.get_transaction_receipt(tx_hash))
    except TransactionNotFound:
        return None


def reconcile_payouts(now: datetime, w3: Web3 | None = None) -> PayoutReconciliation:
    report = PayoutReconciliation(checked_at=now)
    w3 = w3 or web3_client(timeout=5)
    batches = db.session.execute(
        select(PayoutBatch, ChainTransaction).join(ChainTransaction, ChainTransaction.id == PayoutBatch.tx_id).order_by(PayoutBatch.id)
    ).all()
    rows = db.session.execute(
        select(Withdrawal.batch_id, Withdrawal.user_id, Withdrawal.currency, Withdrawal.address, Withdrawal.amount, Withdrawal.status)
    ).all()
    by_batch: dict[int, list] = defaultdict(list)
    for row in rows:
        if row.batch_id is not None:
            by_batch[row.batch_id].append(row)
    on_chain: dict[tuple[int, str], int] = defaultdict(int)  # (member, currency) → paid by settled batches
    for batch, transaction in batches:
        check, paid = _check_batch(w3, batch, transaction, by_batch[batch.id], report)
        report.batches.append(check)
        if batch.status in ("confirmed", "failed") and paid is not None:
            _attribute(paid, by_batch[batch.id], batch.currency, on_chain)
    report.members = _check_members(rows, on_chain, report.chain_answered)
    return report


def _check_batch(w3: Web3, batch: PayoutBatch, transaction: ChainTransaction, withdrawals: list, report: PayoutReconciliation):
    asked: dict[str, int] = defaultdict(int)
    for row in withdrawals:
        asked[to_checksum_address(row.address)] += int(row.amount)
    ledger_total = sum(asked.values())
    problems: list[str] = []
    if int(batch.total) != ledger_total or batch.recipients != len(withdrawals):
        problems.append(str(_l("The batch's total or count differs from its withdrawals.")))
    paid: dict[str, int] | None = None
    recorded_paid = None
    if report.chain_answered and transaction.tx_hash and transaction.status in ("sent", "confirmed", "failed"):
        try:
            receipt = _receipt(w3, transaction.tx_hash)
            paid = _minted_by(receipt, batch.token_address) if receipt is not None and receipt["status"] == 1 else {}
            payout = contract_at(w3, "SapienPayout", transaction.payload["to"])
            recorded_paid = node_call(lambda: payout.functions.paid(bytes.fromhex(batch.onchain_id[2:])).call())
        except (ChainUnavailable, ValueError):
            report.chain_answered = False
            paid = None
    elif transaction.status in ("pending", "signed") or not transaction.tx_hash:
        paid = {}
    chain_total = sum(paid.values()) if paid is not None else None
    if paid is not None:
        if batch.status == "confirmed":
            if paid != dict(asked):
                problems.append(str(_l("The chain paid %(chain)s where the ledger withdrew %(ledger)s.", chain=chain_total, ledger=ledger_total)))
            if recorded_paid is False:
                problems.append(str(_l("The payout contract does not record this batch as paid.")))
        elif batch.status == "failed":
            if chain_total:
                problems.append(str(_l("The batch failed and was refunded, but the chain paid %(chain)s.", chain=chain_total)))
            if recorded_paid:
                problems.append(str(_l("The batch was refunded, but the payout contract records it as paid.")))
    if batch.status == "failed" and any(row.status != "refunded" for row in withdrawals):
        problems.append(str(_l("The batch failed, but not every withdrawal in it was refunded.")))
    if batch.status == "confirmed" and any(row.status != "confirmed" for row in withdrawals):
        problems.append(str(_l("The batch is paid, but not every withdrawal in it says so.")))
    return BatchCheck(batch.id, batch.currency, batch.status, transaction.tx_hash, len(withdrawals), ledger_total, chain_total, tuple(problems)), paid


def _attribute(paid: dict[str, int], withdrawals: list, currency: str, on_chain: dict) -> None:
    """Credit what the chain paid each address to the members whose withdrawals went there."""
    owners: dict[str, list] = defaultdict(list)
    for row in withdrawals:
        owners[to_checksum_address(row.address)].append(row)
    for address, amount in paid.items():
        rows = owners.get(address)
        if not rows:
            continue  # paid to an address no withdrawal named: the batch check lists it
        if amount == sum(int(row.amount) for row in rows):
            for row in rows:
                on_chain[(row.user_id, currency)] += int(row.amount)
        else:
            on_chain[(rows[0].user_id, currency)] += amount


def _check_members(rows: list, on_chain: dict, chain_answered: bool) -> list[MemberCheck]:
    confirmed: dict[tuple[int, str], int] = defaultdict(int)
    in_flight: dict[tuple[int, str], int] = defaultdict(int)
    for row in rows:
        pair = (row.user_id, row.currency)
        if row.status == "confirmed":
            confirmed[pair] += int(row.amount)
        elif row.status in IN_FLIGHT:
            in_flight[pair] += int(row.amount)
        else:
            confirmed.setdefault(pair, 0)
    withdrawn = {
        (user_id, currency): -int(total)
        for user_id, currency, total in db.session.execute(
            select(LedgerEntry.user_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.kind.in_(("withdrawal", "withdrawal_refund")))
            .group_by(LedgerEntry.user_id, LedgerEntry.currency)
        )
    }
    pairs = sorted(set(withdrawn) | set(confirmed) | set(in_flight))
    names = dict(db.session.execute(select(User.id, User.username).where(User.id.in_({user_id for user_id, _c in pairs}))).all()) if pairs else {}
    checks = []
    for pair in pairs:
        ledger_side, settled, flying = withdrawn.get(pair, 0), confirmed.get(pair, 0), in_flight.get(pair, 0)
        chain_side = on_chain.get(pair, 0) if chain_answered else None
        problems = []
        if ledger_side != settled + flying:
            problems.append(str(_l("The ledger withdrew %(ledger)s, the withdrawals add up to %(rows)s.", ledger=ledger_side, rows=settled + flying)))
        if chain_side is not None and chain_side != settled:
            problems.append(str(_l("The chain paid %(chain)s, the ledger says %(ledger)s was paid.", chain=chain_side, ledger=settled)))
        checks.append(MemberCheck(pair[0], names.get(pair[0], "?"), pair[1], ledger_side, settled, flying, chain_side, tuple(problems)))
    return checks
