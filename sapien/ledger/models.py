from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

# Integer base units everywhere: points and XP count whole units; tokens count base units (sapien.i18n.TOKEN_UNIT).
CURRENCIES = ("points", "xp", "token", "stake", "partner")


class LedgerEntry(db.Model):
    """One immutable movement of value. Never updated, never deleted: corrections are new entries."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(f"currency IN {CURRENCIES!r}", name="currency_known"),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_user_currency_id", "user_id", "currency", "id"),
        Index("ix_ledger_entries_user_created", "user_id", "created_at"),
        Index("ix_ledger_entries_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(48))
    # Unique in the database: the same event can never be credited twice, whoever races.
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    memo: Mapped[str] = mapped_column(String(255), default="")
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Balance(db.Model):
    """The cached sum of a member's entries in one currency, updated in the entry's transaction."""

    __tablename__ = "balances"
    __table_args__ = (CheckConstraint("amount >= 0", name="never_negative"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
