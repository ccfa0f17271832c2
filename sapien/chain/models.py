"""Chain tables: contract addresses per chain, the nonce of each signing key, and the transaction outbox.

Every intended on-chain effect is a `ChainTransaction` row committed before anything is sent (DESIGN rule
3). Its `key` is unique, so the same effect (one badge mint, one payout batch) can be queued only once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

# pending → signed → sent → confirmed | failed (see sapien/chain/outbox.py)
TX_STATUSES = ("pending", "signed", "sent", "confirmed", "failed")
UNFINISHED_TX_STATUSES = ("pending", "signed", "sent")
CONTRACT_NAMES = ("SapienToken", "SapienBadge", "SapienPayout", "PartnerToken")


class ContractDeployment(db.Model):
    """Where one of our contracts lives on one chain (the latest deployment wins)."""

    __tablename__ = "chain_contracts"
    __table_args__ = (UniqueConstraint("chain_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignerNonce(db.Model):
    """One row per (chain, signing key): locked FOR UPDATE while a nonce is handed out, so two workers
    never sign two transactions with the same nonce."""

    __tablename__ = "chain_signer_nonces"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChainTransaction(db.Model):
    """One intended on-chain effect and how far it got. `raw_tx` and `tx_hash` are stored before the
    broadcast, so a retry sends the very same bytes."""

    __tablename__ = "chain_transactions"
    __table_args__ = (
        CheckConstraint(f"status IN {TX_STATUSES!r}", name="status_known"),
        UniqueConstraint("chain_id", "signer", "nonce", name="uq_chain_transactions_signer_nonce"),
        Index("ix_chain_transactions_unfinished", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # the effect's idempotency key
    kind: Mapped[str] = mapped_column(String(32))  # "deploy", "badge_mint", "payout", ...
    chain_id: Mapped[int] = mapped_column(BigInteger)
    # {"to": address or None for a deployment, "data": "0x…", "value": int} plus whatever the owner records
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    signer: Mapped[str | None] = mapped_column(String(42))
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    raw_tx: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(String(66), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    contract_address: Mapped[str | None] = mapped_column(String(42))  # for deployments
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED_TX_STATUSES
