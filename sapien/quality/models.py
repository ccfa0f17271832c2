"""Quality tables: QA reviews (real and planted), appeals, verified labels and reputation.

Gold answers live on the item (`labeling.models.Item.gold_answer`); what they *mean* for a member's
reputation and for the review queue lives here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

REVIEW_STATES = ("queued", "claimed", "done")
REVIEW_OUTCOMES = ("accepted", "fixed", "rejected")
APPEAL_STATES = ("open", "upheld", "overturned")


class Review(db.Model):
    """A second-stage check of one submission.

    A real review decides the submission. A planted review shows a reviewer a submission whose right
    verdict is already known (an answer to a gold item), so reviewers are themselves checked; its
    verdict moves only the reviewer's reputation.
    """

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(f"status IN {REVIEW_STATES!r}", name="status_known"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {REVIEW_OUTCOMES!r}", name="outcome_known"),
        # One real review per submission; planted reviews are one per (submission, reviewer).
        Index(
            "uq_reviews_one_real_per_submission",
            "submission_id",
            unique=True,
            postgresql_where=text("is_planted = false"),
            sqlite_where=text("is_planted = 0"),
        ),
        UniqueConstraint("submission_id", "reviewer_id", "is_planted"),
        Index("ix_reviews_status_pack", "status", "pack_id"),
        Index("ix_reviews_reviewer_status", "reviewer_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    # The submission's author, kept here so "never review your own work" is one comparison.
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    fixed_answer: Mapped[dict | None] = mapped_column(JSON)
    is_planted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Planted reviews: the verdict a careful reviewer gives ("accepted" or "rejected").
    expected_outcome: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once, when no reviewer took it in time (or none could): from then on only moderators take it.
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Appeal(db.Model):
    """A member contesting a rejection; once per submission."""

    __tablename__ = "appeals"
    __table_args__ = (CheckConstraint(f"status IN {APPEAL_STATES!r}", name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VerifiedLabel(db.Model):
    """The aggregated answer for an item, with its confidence and provenance. Re-aggregation updates it,
    except once a moderator has overridden it (`overridden_at` set): then the moderator's answer stands."""

    __tablename__ = "verified_labels"
    __table_args__ = (Index("ix_verified_labels_pack", "pack_id"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    answer: Mapped[dict] = mapped_column(JSON)
    confidence: Mapped[float] = mapped_column(Float)
    # "online_vote", "calibrated", "dawid_skene", "wawa", "majority_vote", "medoid", "box_medoid", "moderator_override", ...
    method: Mapped[str] = mapped_column(String(32))
    # Provenance: the submissions (and so members) and reviews the label was made from.
    submission_ids: Mapped[list] = mapped_column(JSON, default=list)
    contributor_ids: Mapped[list] = mapped_column(JSON, default=list)
    review_ids: Mapped[list] = mapped_column(JSON, default=list)
    labels_used: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A moderator's override: who, when and why (the audit log has the same, this is what the page shows).
    overridden_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    overridden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    override_reason: Mapped[str | None] = mapped_column(Text)  # None unless overridden (bulk upserts leave it out)


class Reputation(db.Model):
    """A member's current reputation (0–1000). The history is the `reputation_events` rows."""

    __tablename__ = "reputations"
    __table_args__ = (CheckConstraint("score BETWEEN 0 AND 1000", name="score_in_range"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer, default=500)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReputationEvent(db.Model):
    """One change of a member's reputation, with why. `key` is unique: the same cause moves it once."""

    __tablename__ = "reputation_events"
    __table_args__ = (Index("ix_reputation_events_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    # "gold", "review", "agreement", "planted_review", "appeal", "decay"
    reason: Mapped[str] = mapped_column(String(32))
    delta: Mapped[int] = mapped_column(Integer)
    score_after: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
