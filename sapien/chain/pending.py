"""Outbox rows a crash left half done (pending, signed or sent), for the reconciler: each gets its
`jobs.chain.send_transaction` on the `chain` queue, which finishes it from wherever it stopped.

Kept apart from `outbox.py` so registering the source does not load web3 in every process."""

from __future__ import annotations

from sqlalchemy import select

from sapien.chain.models import UNFINISHED_TX_STATUSES, ChainTransaction
from sapien.extensions import db
from sapien.queue import PendingWork, enqueue_once, pending_work_source


def send_job_id(tx_id: int) -> str:
    return f"chain-tx-{tx_id}"


def enqueue_send(tx_id: int):
    return enqueue_once("jobs.chain.send_transaction", tx_id, job_id=send_job_id(tx_id), queue="chain")


def unfinished_transaction_ids(limit: int = 10_000) -> list[int]:
    return list(
        db.session.scalars(
            select(ChainTransaction.id).where(ChainTransaction.status.in_(UNFINISHED_TX_STATUSES)).order_by(ChainTransaction.id).limit(limit)
        )
    )


@pending_work_source("chain-outbox")
def _unfinished_transactions():
    for tx_id in unfinished_transaction_ids():
        yield PendingWork("jobs.chain.send_transaction", (tx_id,), send_job_id(tx_id), queue="chain")


# --- token payouts (sapien/chain/payouts.py) -----------------------------------------------------

SETTLE_JOB = "jobs.chain.settle_withdrawals"
SETTLE_JOB_ID = "chain-settle-withdrawals"


def enqueue_settlement():
    return enqueue_once(SETTLE_JOB, job_id=SETTLE_JOB_ID, queue="chain")


def settlement_is_due() -> bool:
    """Withdrawals waiting for a batch (on a chain with our contracts), or batches waiting for their receipt."""
    from sapien.chain.models import ContractDeployment
    from sapien.chain.payout_models import PayoutBatch, Withdrawal

    waiting = db.session.scalar(
        select(Withdrawal.id)
        .join(ContractDeployment, (ContractDeployment.chain_id == Withdrawal.chain_id) & (ContractDeployment.name == "SapienPayout"))
        .where(Withdrawal.status == "pending")
        .limit(1)
    )
    unfinished = db.session.scalar(select(PayoutBatch.id).where(PayoutBatch.status.in_(("queued", "sent"))).limit(1))
    return waiting is not None or unfinished is not None


@pending_work_source("chain-withdrawals")
def _withdrawals_to_settle():
    if settlement_is_due():
        yield PendingWork(SETTLE_JOB, (), SETTLE_JOB_ID, queue="chain")
