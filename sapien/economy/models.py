from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db


class Parameter(db.Model):
    """The current value of one economic setting that differs from (or was once set over) its default.

    A setting without a row has its default (`economy.parameters.PARAMETERS`); a row is only written by
    `set_parameter`, together with its `ParameterChange`.
    """

    __tablename__ = "economy_parameters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[object] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ParameterChange(db.Model):
    """One change of a setting: the old and new value, who, why, when and, for a vote, which proposal.

    `proposal_id` is a plain column (governance's proposals live in a table economy does not know).
    """

    __tablename__ = "economy_parameter_changes"
    __table_args__ = (Index("ix_economy_parameter_changes_name_at", "name", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[object | None] = mapped_column(JSON)
    new_value: Mapped[object] = mapped_column(JSON)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    proposal_id: Mapped[int | None] = mapped_column(Integer)


EPOCH_STATES = ("open", "closed")
STAKE_STATES = ("staked", "cooling", "released")
STAKE_SOURCES = ("member", "auto")
SLASH_SEVERITIES = ("warning", "moderate", "severe")
STATEMENT_ROLES = ("contributor", "holder", "staker")


class ConversionEpoch(db.Model):
    """One conversion period. Its members' points convert once each: when they ask, or when it closes.

    The totals are written when the epoch closes (the moderators' report); an open epoch has none yet.
    """

    __tablename__ = "economy_epochs"
    __table_args__ = (CheckConstraint(f"status IN {EPOCH_STATES!r}", name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="open")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    members: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(Numeric(40, 0), default=0)
    tokens: Mapped[int] = mapped_column(Numeric(40, 0), default=0)
    staked: Mapped[int] = mapped_column(Numeric(40, 0), default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)


class Conversion(db.Model):
    """A member's points converted in one epoch: unique per (epoch, member), so it happens once."""

    __tablename__ = "economy_conversions"
    __table_args__ = (
        UniqueConstraint("epoch_id", "user_id", name="uq_economy_conversions_epoch_user"),
        Index("ix_economy_conversions_user", "user_id", "epoch_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    epoch_id: Mapped[int] = mapped_column(ForeignKey("economy_epochs.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    points: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)  # all of it, the staked share included
    staked: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[int] = mapped_column(BigInteger)  # token base units per 1,000 points
    requested: Mapped[bool] = mapped_column(Boolean, default=False)  # the member asked ("convert now")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StakePosition(db.Model):
    """Tokens a member locked for `lock_months`. The ledger's `stake` balance is the money; a position is
    its lock: `staked` (counts for tiers) → `cooling` (asked to unstake after the lock) → `released`."""

    __tablename__ = "economy_stakes"
    __table_args__ = (
        CheckConstraint(f"status IN {STAKE_STATES!r}", name="status_known"),
        CheckConstraint(f"source IN {STAKE_SOURCES!r}", name="source_known"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        Index("ix_economy_stakes_user_status", "user_id", "status"),
        # One auto-stake per conversion (members' own stakes have none): a rerun of an epoch adds none.
        UniqueConstraint("conversion_id", name="uq_economy_stakes_conversion_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    amount: Mapped[int] = mapped_column(BigInteger)  # what is left after slashes
    staked_amount: Mapped[int] = mapped_column(BigInteger)
    lock_months: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="member")
    conversion_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="staked")
    staked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lock_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    unstake_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    release_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Slash(db.Model):
    """A moderator's slash of a member's stake for confirmed fraud (a warning takes nothing)."""

    __tablename__ = "economy_slashes"
    __table_args__ = (
        CheckConstraint(f"severity IN {SLASH_SEVERITIES!r}", name="severity_known"),
        Index("ix_economy_slashes_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    severity: Mapped[str] = mapped_column(String(16))
    share_bp: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RevenuePayment(db.Model):
    """An enterprise payment for a campaign (or a sale of a community dataset) and how it was split.

    Unique per (campaign, external reference): the same payment recorded twice makes one distribution.
    contributors + stakers + treasury == amount, to the unit (the rounding remainder is in `remainder`,
    and counted in the treasury's part).
    """

    __tablename__ = "economy_revenue_payments"
    __table_args__ = (
        UniqueConstraint("campaign_id", "external_ref", name="uq_economy_revenue_payments_campaign_ref"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("contributors + stakers + treasury = amount", name="parts_add_up"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    external_ref: Mapped[str] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(BigInteger)
    split: Mapped[dict] = mapped_column(JSON)
    contributors: Mapped[int] = mapped_column(BigInteger)
    stakers: Mapped[int] = mapped_column(BigInteger)
    treasury: Mapped[int] = mapped_column(BigInteger)
    remainder: Mapped[int] = mapped_column(BigInteger)
    recipients: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StatementLine(db.Model):
    """What one payment earned one member, and as what (contributor, dataset holder or staker)."""

    __tablename__ = "economy_statement_lines"
    __table_args__ = (
        CheckConstraint(f"role IN {STATEMENT_ROLES!r}", name="role_known"),
        UniqueConstraint("payment_id", "user_id", "role", name="uq_economy_statement_lines_payment_user_role"),
        Index("ix_economy_statement_lines_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("economy_revenue_payments.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    role: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
