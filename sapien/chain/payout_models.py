"""Token withdrawals and the settlement batches that pay them on chain (rules in sapien/chain/payouts.py).

A `Withdrawal` is created in the same transaction as the ledger debit that funds it, so the value is
either in the member's balance or in exactly one withdrawal, never both and never neither. A
`PayoutBatch` pays many withdrawals with one outbox transaction; its `onchain_id` is the batch id the
payout contract records as paid, so the same batch can never pay twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

# pending (debited, waiting for a batch) → batched → sent → confirmed | refunded (the batch failed)
WITHDRAWAL_STATUSES = ("pending", "batched", "sent", "confirmed", "refunded")
WITHDRAWABLE_CURRENCIES = ("token", "partner")
# queued (its outbox row is committed) → sent → confirmed | failed (every withdrawal refunded)
BATCH_STATUSES = ("queued", "sent", "confirmed", "failed")


class Withdrawal(db.Model):
    __tablename__ = "withdrawals"
    __table_args__ = (
        CheckConstraint(f"status IN {WITHDRAWAL_STATUSES!r}", name="status_known"),
        CheckConstraint(f"currency IN {WITHDRAWABLE_CURRENCIES!r}", name="currency_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_withdrawals_status_id", "status", "id"),
        Index("ix_withdrawals_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The request's idempotency key (a form sent twice makes one withdrawal).
    key: Mapped[str] = mapped_column(String(120), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # base units, as in the ledger
    chain_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(42))  # the wallet linked when it was asked for
    status: Mapped[str] = mapped_column(String(16), default="pending")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("payout_batches.id", ondelete="RESTRICT"), index=True)
    debit_entry_id: Mapped[int] = mapped_column(BigInteger)
    refund_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PayoutBatch(db.Model):
    __tablename__ = "payout_batches"
    __table_args__ = (
        CheckConstraint(f"status IN {BATCH_STATUSES!r}", name="status_known"),
        Index("ix_payout_batches_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(16))
    token_address: Mapped[str] = mapped_column(String(42))
    onchain_id: Mapped[str] = mapped_column(String(66), unique=True)  # bytes32, random, chosen once
    recipients: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(Numeric(78, 0))  # a sum of many base-unit amounts
    status: Mapped[str] = mapped_column(String(16), default="queued")
    tx_id: Mapped[int] = mapped_column(ForeignKey("chain_transactions.id", ondelete="RESTRICT"), unique=True)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
