"""Token payouts: members withdraw their off-chain token (or partner token) balance to their wallet, and a
settlement job pays the withdrawals in batches, one `SapienPayout.payMinting` transaction per batch.

    withdrawal: pending ──batch──▶ batched ──broadcast──▶ sent ──receipt──▶ confirmed | refunded
    batch:                queued ──broadcast──▶ sent ──receipt──▶ confirmed | failed

Invariants:
- A withdrawal is the ledger debit that funds it: both are written in one transaction, under the
  request's idempotency key (`withdrawal:<key>`), so a form sent twice withdraws once. The debit is the
  ledger's guarded UPDATE, so two withdrawals at once can never take a balance below zero.
- A withdrawal joins one batch only (pending rows are taken FOR UPDATE SKIP LOCKED), and a batch and its
  outbox transaction are committed together, before anything is sent. The batch's `onchain_id` is chosen
  once and recorded by the contract as paid in the same transaction that pays, so no retry, replay or
  crash can pay a batch twice (the outbox re-sends the very same signed bytes).
- The safe rule for a failed batch: its transaction reverted (or would revert, so it was never signed),
  and the contract says its batch id is *unpaid*. A reverted transaction changes nothing on chain and its
  nonce is spent, so no copy of it can ever be mined: every withdrawal of the batch is then returned to
  its member by a compensating ledger credit (`withdrawal_refund`), and the batch id is never used again
  (a failed payout transaction is not retried; the member withdraws afresh). When the contract says the
  batch id *is* paid, the batch counts as paid, never refunded.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from web3 import Web3

from sapien.chain.client import web3_client
from sapien.chain.contracts import call_data, contract_at
from sapien.chain.deploy import contract_address
from sapien.chain.models import ChainTransaction
from sapien.chain.outbox import ChainUnavailable, TransactionPending, advance, node_call, queue_transaction
from sapien.chain.payout_models import WITHDRAWABLE_CURRENCIES, PayoutBatch, Withdrawal
from sapien.chain.pending import enqueue_settlement
from sapien.chain.registry import chain_info, enabled_chain_ids
from sapien.chain.wallet_models import Wallet
from sapien.database import after_commit, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.ledger import service as ledger

TOKEN_CONTRACTS = {"token": "SapienToken", "partner": "PartnerToken"}
BATCH_SIZE = 200  # recipients per transaction: about 10 M gas, well inside a block
MAX_AMOUNT = 2**63 - 1  # the ledger's BIGINT: no balance holds more
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,100}$")


class PayoutError(DomainError):
    """A withdrawal that cannot be made; the message says why, for the member."""


@dataclass(frozen=True)
class WithdrawalRequest:
    withdrawal_id: int
    created: bool  # False when the same request (key) was made before


def request_withdrawal(user_id: int, currency: str, amount: int, key: str, now: datetime) -> WithdrawalRequest:
    """Debit `amount` base units of `currency` and record the withdrawal to the member's linked wallet on
    their payout chain; the settlement job pays it. The same key twice makes one withdrawal."""
    if currency not in WITHDRAWABLE_CURRENCIES:
        raise PayoutError(_l("Only tokens and partner tokens can be withdrawn."), "currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise PayoutError(_l("Enter an amount above zero."), "amount")
    if amount > MAX_AMOUNT:
        raise PayoutError(_l("That is more than your balance. Withdraw at most what you have."), "amount")
    if not KEY_PATTERN.match(key or ""):
        raise PayoutError(_l("This form is out of date. Reload the page and try again."))
    with unit_of_work() as session:
        existing = session.scalar(select(Withdrawal).where(Withdrawal.key == key))
        if existing is not None:
            return _same_request(existing, user_id, currency, amount)
        wallet = session.scalar(select(Wallet).where(Wallet.user_id == user_id))
        if wallet is None:
            raise PayoutError(_l("Link a wallet before you withdraw."))
        chain_id = wallet.payout_chain_id
        if chain_id is None or chain_id not in enabled_chain_ids():
            raise PayoutError(_l("Choose the chain your payouts go to before you withdraw."))
        try:
            with session.begin_nested():
                posting = ledger.debit(user_id, currency, amount, kind="withdrawal", key=f"withdrawal:{key}", now=now,
                                       memo=f"to {wallet.address} on {chain_info(chain_id).name}")
                withdrawal = Withdrawal(key=key, user_id=user_id, currency=currency, amount=amount, chain_id=chain_id,
                                        address=wallet.address, status="pending", debit_entry_id=posting.entry_id,
                                        created_at=now, updated_at=now)
                session.add(withdrawal)
                session.flush()
        except ledger.InsufficientBalance:
            raise PayoutError(_l("That is more than your balance. Withdraw at most what you have."), "amount") from None
        except IntegrityError:
            # The same request, sent twice at once: the other one made it.
            existing = session.scalar(select(Withdrawal).where(Withdrawal.key == key))
            if existing is None:
                raise
            return _same_request(existing, user_id, currency, amount)
        after_commit(enqueue_settlement)
        return WithdrawalRequest(withdrawal.id, created=True)


def _same_request(existing: Withdrawal, user_id: int, currency: str, amount: int) -> WithdrawalRequest:
    if (existing.user_id, existing.currency, existing.amount) != (user_id, currency, amount):
        raise PayoutError(_l("This form is out of date. Reload the page and try again."))
    return WithdrawalRequest(existing.id, created=False)


# --- settlement ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settlement:
    batches_formed: int
    confirmed: int
    failed: int
    unfinished: int


def settle_withdrawals(now: datetime, w3: Web3 | None = None, batch_size: int = BATCH_SIZE) -> Settlement:
    """Batch every pending withdrawal, then drive every unfinished batch to its receipt. Raises
    `ChainUnavailable` or `TransactionPending` (after trying every batch) so the job retries."""
    formed = form_batches(now, batch_size)
    w3 = w3 or web3_client(timeout=10)
    confirmed = failed = 0
    problem: Exception | None = None
    for batch_id in unfinished_batch_ids():
        try:
            status = drive_batch(batch_id, now, w3)
        except (ChainUnavailable, TransactionPending) as error:
            problem = problem or error
            continue
        confirmed += status == "confirmed"
        failed += status == "failed"
    if problem is not None:
        raise problem
    return Settlement(formed, confirmed, failed, len(unfinished_batch_ids()))


def unfinished_batch_ids() -> list[int]:
    return list(db.session.scalars(select(PayoutBatch.id).where(PayoutBatch.status.in_(("queued", "sent"))).order_by(PayoutBatch.id)))


def form_batches(now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Put pending withdrawals into batches of at most `batch_size`, each with its outbox transaction (one
    database transaction per batch). Withdrawals on a chain without our contracts wait."""
    groups = db.session.execute(
        select(Withdrawal.chain_id, Withdrawal.currency).where(Withdrawal.status == "pending").distinct()
    ).all()
    formed = 0
    for chain_id, currency in sorted(groups):
        payout = contract_address(chain_id, "SapienPayout")
        token = contract_address(chain_id, TOKEN_CONTRACTS[currency])
        if payout is None or token is None:
            continue  # `flask chain deploy` has not run on that chain: they wait
        while _form_one(chain_id, currency, payout, token, now, batch_size):
            formed += 1
    return formed


def _form_one(chain_id: int, currency: str, payout: str, token: str, now: datetime, batch_size: int) -> bool:
    with unit_of_work() as session:
        rows = session.execute(
            select(Withdrawal.id, Withdrawal.address, Withdrawal.amount)
            .where(Withdrawal.status == "pending", Withdrawal.chain_id == chain_id, Withdrawal.currency == currency)
            .order_by(Withdrawal.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return False
        onchain_id = "0x" + secrets.token_hex(32)
        addresses = [Web3.to_checksum_address(address) for _id, address, _amount in rows]
        amounts = [int(amount) for _id, _address, amount in rows]
        tx_id = queue_transaction(
            key=f"payout-batch:{onchain_id}", kind="payout", chain_id=chain_id, to=payout, now=now,
            data=call_data("SapienPayout", "payMinting", bytes.fromhex(onchain_id[2:]), Web3.to_checksum_address(token), addresses, amounts),
            extra={"batch": onchain_id, "currency": currency, "recipients": len(rows)},
        )
        batch = PayoutBatch(chain_id=chain_id, currency=currency, token_address=token, onchain_id=onchain_id, recipients=len(rows),
                            total=sum(amounts), status="queued", tx_id=tx_id, created_at=now, updated_at=now)
        session.add(batch)
        session.flush()
        session.execute(
            update(Withdrawal).where(Withdrawal.id.in_([row[0] for row in rows]))
            .values(status="batched", batch_id=batch.id, updated_at=now)
        )
    return True


def drive_batch(batch_id: int, now: datetime, w3: Web3) -> str:
    """Take one batch's transaction as far as it goes and settle the batch from its outcome."""
    tx_id = db.session.scalar(select(PayoutBatch.tx_id).where(PayoutBatch.id == batch_id))
    try:
        status = advance(tx_id, now, w3)
    finally:
        _mark_sent(batch_id, now)
    if status == "confirmed":
        return _settle(batch_id, "confirmed", now)
    if status == "failed":
        return _fail(batch_id, now, w3)
    return status


def _mark_sent(batch_id: int, now: datetime) -> None:
    """Once its transaction is broadcast (or beyond), the batch and its withdrawals say "sent"."""
    with unit_of_work() as session:
        tx_status = session.scalar(
            select(ChainTransaction.status).join(PayoutBatch, PayoutBatch.tx_id == ChainTransaction.id).where(PayoutBatch.id == batch_id)
        )
        if tx_status not in ("sent", "confirmed", "failed"):
            return
        moved = session.execute(
            update(PayoutBatch).where(PayoutBatch.id == batch_id, PayoutBatch.status == "queued").values(status="sent", updated_at=now)
        ).rowcount
        if moved:
            session.execute(
                update(Withdrawal).where(Withdrawal.batch_id == batch_id, Withdrawal.status == "batched").values(status="sent", updated_at=now)
            )


def _settle(batch_id: int, status: str, now: datetime, error: str | None = None) -> str:
    with unit_of_work() as session:
        batch = session.get(PayoutBatch, batch_id, with_for_update=True, populate_existing=True)
        if batch.status not in ("queued", "sent"):
            return batch.status
        batch.status, batch.settled_at, batch.updated_at, batch.last_error = status, now, now, error
        if status == "confirmed":
            session.execute(
                update(Withdrawal).where(Withdrawal.batch_id == batch_id, Withdrawal.status.in_(("batched", "sent")))
                .values(status="confirmed", updated_at=now)
            )
        else:
            _refund(session, batch, now)
        return batch.status


def _refund(session, batch: PayoutBatch, now: datetime) -> None:
    """Return every withdrawal of a failed batch to its member: compensating credits, never edits."""
    withdrawals = list(session.scalars(
        select(Withdrawal).where(Withdrawal.batch_id == batch.id, Withdrawal.status != "refunded").order_by(Withdrawal.id)
    ))
    credits = [
        ledger.BulkCredit(w.user_id, w.currency, int(w.amount), f"withdrawal-refund:{w.key}", "withdrawal_refund",
                          f"payout batch {batch.id} failed")
        for w in withdrawals
    ]
    entry_ids = ledger.credit_bulk(credits, now=now)
    for withdrawal in withdrawals:
        withdrawal.status, withdrawal.updated_at = "refunded", now
        withdrawal.refund_entry_id = entry_ids.get(f"withdrawal-refund:{withdrawal.key}")


def _fail(batch_id: int, now: datetime, w3: Web3) -> str:
    """The safe rule (module docstring): refund only when the contract says the batch id is unpaid."""
    batch = db.session.get(PayoutBatch, batch_id, populate_existing=True)
    transaction = db.session.get(ChainTransaction, batch.tx_id)
    payout = contract_at(w3, "SapienPayout", transaction.payload["to"])
    paid = node_call(lambda: payout.functions.paid(bytes.fromhex(batch.onchain_id[2:])).call())
    if paid:
        return _settle(batch_id, "confirmed", now, "the transaction failed, but the contract records this batch as paid")
    return _settle(batch_id, "failed", now, transaction.last_error or "the transaction reverted")


# --- what the member sees ------------------------------------------------------------------------

@dataclass(frozen=True)
class WithdrawalView:
    id: int
    currency: str
    amount: int
    address: str
    chain_name: str
    status: str  # pending | sent | confirmed | failed (as the member reads it)
    created_at: datetime
    tx_hash: str | None
    explorer_url: str | None
    waiting_for_chain: bool

    @property
    def live(self) -> bool:
        return self.status in ("pending", "sent")


MEMBER_STATUS = {"pending": "pending", "batched": "pending", "sent": "sent", "confirmed": "confirmed", "refunded": "failed"}


def withdrawal_history(user_id: int, limit: int = 20) -> list[WithdrawalView]:
    rows = db.session.execute(
        select(Withdrawal, ChainTransaction.tx_hash, ChainTransaction.status, ChainTransaction.last_error)
        .outerjoin(PayoutBatch, PayoutBatch.id == Withdrawal.batch_id)
        .outerjoin(ChainTransaction, ChainTransaction.id == PayoutBatch.tx_id)
        .where(Withdrawal.user_id == user_id)
        .order_by(Withdrawal.id.desc())
        .limit(limit)
    ).all()
    views = []
    for withdrawal, tx_hash, tx_status, last_error in rows:
        info = chain_info(withdrawal.chain_id)
        shown_hash = tx_hash if tx_status in ("sent", "confirmed", "failed") else None
        status = MEMBER_STATUS[withdrawal.status]
        views.append(WithdrawalView(
            id=withdrawal.id, currency=withdrawal.currency, amount=int(withdrawal.amount), address=withdrawal.address,
            chain_name=info.name, status=status, created_at=withdrawal.created_at, tx_hash=shown_hash,
            explorer_url=info.tx_url(shown_hash),
            waiting_for_chain=status in ("pending", "sent") and bool(last_error and last_error.startswith("waiting for the chain")),
        ))
    return views
