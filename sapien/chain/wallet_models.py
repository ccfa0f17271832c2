"""Members' wallets, linked by Sign-In with Ethereum, and the nonces the server issues for it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db


class Wallet(db.Model):
    """A member's linked wallet. One wallet per member and one member per wallet: both are unique keys,
    so two members racing to link one wallet cannot both win (the database refuses the second)."""

    __tablename__ = "wallets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # Always the EIP-55 checksummed form (what eth-account recovers), so one wallet has one spelling.
    address: Mapped[str] = mapped_column(String(42), unique=True)
    # The chain the member wants payouts on; None until they pick one (see `payout_chains`).
    payout_chain_id: Mapped[int | None] = mapped_column(Integer)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SiweNonce(db.Model):
    """A nonce the server put in a sign-in message for one member: single use, expiring. The message's
    address and chain are kept too, so a signed message must be the one this member asked for."""

    __tablename__ = "siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
