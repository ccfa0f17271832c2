from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

PROPOSAL_KINDS = ("parameter", "task_type")
# voting → passed | failed; passed → queued (timelock) → executed; voting, passed or queued → cancelled.
# A passed task-type proposal waits for a moderator, who marks it executed once acted on.
PROPOSAL_STATUSES = ("voting", "passed", "failed", "queued", "executed", "cancelled")
VOTE_CHOICES = ("for", "against", "abstain")


class Proposal(db.Model):
    """One proposal: a new value for one economy parameter, or a new task type. The rules it is decided by
    (period, quorum, threshold, timelock) are copied in when it opens, so a later change of those
    parameters never moves the goalposts of a running vote."""

    __tablename__ = "governance_proposals"
    __table_args__ = (
        CheckConstraint(f"kind IN {PROPOSAL_KINDS!r}", name="kind_known"),
        CheckConstraint(f"status IN {PROPOSAL_STATUSES!r}", name="status_known"),
        CheckConstraint("quorum_bp BETWEEN 0 AND 10000 AND threshold_bp BETWEEN 0 AND 10000", name="rules_in_range"),
        Index("ix_governance_proposals_status_closes", "status", "closes_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(120))
    rationale: Mapped[str] = mapped_column(Text, default="")
    # kind "parameter": the parameter, its value when the proposal opened and the value proposed.
    parameter_name: Mapped[str | None] = mapped_column(String(64))
    old_value: Mapped[object | None] = mapped_column(JSON)
    new_value: Mapped[object | None] = mapped_column(JSON)
    # kind "task_type": the task type asked for (a moderator builds it once the vote passes).
    task_type_name: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="voting")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    quorum_bp: Mapped[int] = mapped_column(Integer)
    threshold_bp: Mapped[int] = mapped_column(Integer)
    timelock_seconds: Mapped[int] = mapped_column(Integer)
    # The sum of the frozen voting power (the quorum's base) and how many members hold some.
    total_power: Mapped[int] = mapped_column(BigInteger, default=0)
    eligible_voters: Mapped[int] = mapped_column(Integer, default=0)
    # The final tally, written when the vote closes.
    power_for: Mapped[int] = mapped_column(BigInteger, default=0)
    power_against: Mapped[int] = mapped_column(BigInteger, default=0)
    power_abstain: Mapped[int] = mapped_column(BigInteger, default=0)
    voters: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    executable_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The parameter store's history row this proposal wrote (no foreign key: the store is another area's).
    parameter_change_id: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why it was cancelled, or what the moderator did with a task type, or why the change could not apply.
    outcome_note: Mapped[str] = mapped_column(Text, default="")


class PowerSnapshot(db.Model):
    """A member's voting power in one proposal, frozen when it opened. No row, no vote."""

    __tablename__ = "governance_power_snapshots"
    __table_args__ = (CheckConstraint("power > 0", name="power_positive"),)

    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    stake: Mapped[int] = mapped_column(BigInteger)
    reputation: Mapped[int] = mapped_column(Integer)
    power: Mapped[int] = mapped_column(BigInteger)


class Vote(db.Model):
    """A member's vote on a proposal: one per member (unique), changed in place until the close. Its power
    is the member's frozen power, copied in so a tally is one aggregate over one table."""

    __tablename__ = "governance_votes"
    __table_args__ = (
        UniqueConstraint("proposal_id", "user_id", name="uq_governance_votes_proposal_user"),
        CheckConstraint(f"choice IN {VOTE_CHOICES!r}", name="choice_known"),
        Index("ix_governance_votes_proposal_choice", "proposal_id", "choice"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    choice: Mapped[str] = mapped_column(String(8))
    power: Mapped[int] = mapped_column(BigInteger)
    cast_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
