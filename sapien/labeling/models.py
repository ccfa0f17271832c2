"""Labeling tables: campaigns, task packs, items and their media, assignment leases, submissions.

Answers are JSON in one canonical shape per task type (see `ANSWER_SHAPES`), so validation, gold checks,
review fixes, aggregation and exports all read the same thing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

# Sahara's campaign kinds: enterprise pays tokens; dual pays tokens plus a partner token;
# community pays nothing now and records shares of the dataset's future revenue.
CAMPAIGN_KINDS = ("enterprise", "dual", "community")
CAMPAIGN_STATES = ("active", "paused", "closed")
TASK_TYPES = (
    "text_classification",
    "text_cleaning",
    "image_classification",
    "bounding_boxes",
    "audio_transcription",
)
DIFFICULTIES = ("beginner", "intermediate", "advanced", "expert")
# A new pack is a draft (hidden from members) until a moderator publishes it with its items.
PACK_STATES = ("draft", "open", "paused", "closed")
MEDIA_KINDS = ("image", "audio")
ITEM_STATES = ("open", "retired")
OPEN_GOLD = "is_gold AND NOT is_exam AND status = 'open'"  # the gold items a member can be given (`ix_items_pack_gold`)
LEASE_STATES = ("active", "submitted", "expired", "released")
SUBMISSION_STATES = ("accepted", "pending_review", "rejected")
# Where an answer's reward stands (see labeling/settlement.py): pending until it is verified (agreement with
# the item's verified label, or a reviewer's accept), then paid by the next settlement batch; an answer
# that disagrees with the verified label is not verified and earns nothing; a rejection before any pay
# voids it. Gold answers are verified at once by their known answer.
REWARD_STATES = ("pending", "verified", "paid", "not_verified", "void")

# The canonical answer for each task type (documentation for every area that reads answers):
ANSWER_SHAPES = {
    "text_classification": '{"labels": ["<label>", ...]}  (exactly one unless the pack is multi-label)',
    "image_classification": '{"labels": ["<label>", ...]}  (exactly one unless the pack is multi-label)',
    "text_cleaning": '{"text": "<the edited passage>"}',
    "audio_transcription": '{"text": "<the transcript>"}',
    "bounding_boxes": '{"boxes": [{"x": int, "y": int, "w": int, "h": int, "label": "<label>"}, ...]}  (image pixels)',
}


class Campaign(db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(f"kind IN {CAMPAIGN_KINDS!r}", name="kind_known"),
        CheckConstraint(f"status IN {CAMPAIGN_STATES!r}", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="enterprise")
    # Who the data is for (an enterprise client's name; empty for the platform's own campaigns).
    client_name: Mapped[str] = mapped_column(String(120), default="")
    # Dual-reward campaigns: the partner token's symbol (its amounts live in the ledger as currency "partner:<symbol>").
    partner_token: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The client organization that owns it (the API area); None for the platform's own campaigns.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"), index=True, default=None)


class TaskPack(db.Model):
    __tablename__ = "task_packs"
    __table_args__ = (
        CheckConstraint(f"task_type IN {TASK_TYPES!r}", name="task_type_known"),
        CheckConstraint(f"difficulty IN {DIFFICULTIES!r}", name="difficulty_known"),
        CheckConstraint(f"status IN {PACK_STATES!r}", name="status_known"),
        CheckConstraint("reward_points >= 0 AND reward_xp >= 0 AND partner_reward >= 0 AND revenue_shares >= 0", name="rewards_not_negative"),
        CheckConstraint("labels_per_item >= 1 AND max_labels_per_item >= labels_per_item", name="labels_per_item_valid"),
        CheckConstraint("gold_rate_percent BETWEEN 0 AND 90", name="gold_rate_valid"),
        CheckConstraint("review_rate_percent BETWEEN 0 AND 100", name="review_rate_valid"),
        CheckConstraint("daily_cap >= 1", name="daily_cap_positive"),
        CheckConstraint("lease_minutes >= 1", name="lease_minutes_positive"),
        CheckConstraint("min_level >= 1 AND min_reputation >= 0 AND min_stake >= 0", name="unlocks_valid"),
        Index("ix_task_packs_status_type", "status", "task_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    task_type: Mapped[str] = mapped_column(String(32))
    multi_label: Mapped[bool] = mapped_column(Boolean, default=False)
    # The label set (classification and boxes); empty for free-text task types.
    label_options: Mapped[list] = mapped_column(JSON, default=list)
    instructions: Mapped[str] = mapped_column(Text, default="")
    # Worked examples shown with the instructions: [{"input": str, "answer": str, "why": str}, ...].
    examples: Mapped[list] = mapped_column(JSON, default=list)
    difficulty: Mapped[str] = mapped_column(String(16), default="beginner")
    # Base rewards per accepted label, before the difficulty multiplier and the streak multiplier.
    reward_points: Mapped[int] = mapped_column(Integer, default=10)
    reward_xp: Mapped[int] = mapped_column(Integer, default=10)
    partner_reward: Mapped[int] = mapped_column(Integer, default=0)
    revenue_shares: Mapped[int] = mapped_column(Integer, default=0)
    # Adaptive redundancy: ask `labels_per_item` members; ask more (up to the maximum) while they disagree.
    labels_per_item: Mapped[int] = mapped_column(Integer, default=3)
    max_labels_per_item: Mapped[int] = mapped_column(Integer, default=5)
    gold_rate_percent: Mapped[int] = mapped_column(Integer, default=10)
    review_rate_percent: Mapped[int] = mapped_column(Integer, default=10)
    daily_cap: Mapped[int] = mapped_column(Integer, default=200)
    lease_minutes: Mapped[int] = mapped_column(Integer, default=15)
    estimated_seconds: Mapped[int] = mapped_column(Integer, default=20)
    # Unlock requirements.
    min_level: Mapped[int] = mapped_column(Integer, default=1)
    min_reputation: Mapped[int] = mapped_column(Integer, default=0)
    min_stake: Mapped[int] = mapped_column(Integer, default=0)
    exam_required: Mapped[bool] = mapped_column(Boolean, default=False)
    exam_size: Mapped[int] = mapped_column(Integer, default=5)
    exam_pass_percent: Mapped[int] = mapped_column(Integer, default=80)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when an aggregation is asked for, cleared by the job that ran after it: the reconciler's record
    # of aggregation work still to do (see quality/aggregation_queue.py).
    aggregation_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=None)


class Media(db.Model):
    """A media file of a pack, stored under the instance folder and served only to members who may see it."""

    __tablename__ = "media"
    __table_args__ = (CheckConstraint(f"kind IN {MEDIA_KINDS!r}", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(64))
    # Path relative to the media root (config MEDIA_ROOT); content-addressed by sha256.
    path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


MAX_EXTERNAL_ID = 2048


def external_key(external_id: str) -> str:
    """What makes an external id unique in its pack: its SHA-256 (hex). A B-tree entry holds at most about
    2.7 kB, less than 2,048 characters of UTF-8 can take, so the unique index is on the hash."""
    return hashlib.sha256(external_id.encode("utf-8")).hexdigest()


def _external_key_default(context) -> str:
    return external_key(context.get_current_parameters()["external_id"])


class Item(db.Model):
    """One thing to label. Gold items carry the known answer; exam items are gold items kept for exams."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("pack_id", "external_key"),
        CheckConstraint(f"status IN {ITEM_STATES!r}", name="status_known"),
        CheckConstraint("slots_taken >= 0 AND slots_taken <= labels_target", name="slots_within_target"),
        # In the order `claims.claim_ordinary_statement` takes items, so the claim reads the first unleased entry, not a sort.
        Index("ix_items_pack_open", "pack_id", "status", "is_gold", text("slots_taken DESC"), "id"),
        # The gold draw starts at a random id and reads on from there (`claims._gold_pick_statement`).
        Index("ix_items_pack_gold", "pack_id", "id", postgresql_where=text(OPEN_GOLD), sqlite_where=text(OPEN_GOLD)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(MAX_EXTERNAL_ID))
    # Set from external_id on insert (ORM or bulk): see `external_key`.
    external_key: Mapped[str] = mapped_column(String(64), default=_external_key_default)
    # {"text": "..."} for text types; media items keep their metadata here and the file in `media_id`.
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"))
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    is_exam: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_answer: Mapped[dict | None] = mapped_column(JSON)
    # The guideline shown with gold feedback ("why this is the answer").
    gold_explanation: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    # How many labels this item wants now (adaptive redundancy raises it), and how many slots are taken
    # by active leases and non-rejected submissions. Taking a slot is one conditional UPDATE, so two
    # members racing for the last slot cannot both get it.
    labels_target: Mapped[int] = mapped_column(Integer, default=3)
    slots_taken: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the item reached its pack's maximum of answers without two people agreeing on one: it is
    # retired without a verified label and its pack's owner is told (see quality/convergence.py).
    no_consensus_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=None)


class Lease(db.Model):
    """An item handed to a member until `expires_at`. Unique per (item, member): never the same item twice."""

    __tablename__ = "leases"
    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        CheckConstraint(f"status IN {LEASE_STATES!r}", name="status_known"),
        Index("ix_leases_user_status", "user_id", "status"),
        Index("ix_leases_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Submission(db.Model):
    """A member's answer to a leased item. Its reward is fixed when it is given (`paid_*`) and paid once it is
    verified (`reward_state`); what was paid is recorded so a rejection can reverse it."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        CheckConstraint(f"status IN {SUBMISSION_STATES!r}", name="status_known"),
        CheckConstraint(f"reward_state IN {REWARD_STATES!r}", name="reward_state_known"),
        Index("ix_submissions_user_created", "user_id", "created_at"),
        Index("ix_submissions_pack_user_created", "pack_id", "user_id", "created_at"),
        Index("ix_submissions_item_status", "item_id", "status"),
        # The settlement batch's queue: verified answers not paid yet (a small partial index).
        Index("ix_submissions_verified_unpaid", "id", postgresql_where=text("reward_state = 'verified'"),
              sqlite_where=text("reward_state = 'verified'")),
        # A member's rewards still to come (the nav's pending figure).
        Index("ix_submissions_user_reward_open", "user_id", postgresql_where=text("reward_state IN ('pending', 'verified')"),
              sqlite_where=text("reward_state IN ('pending', 'verified')")),
        # The decision job's queue: accepted answers quality has not weighed yet (a small partial index).
        Index("ix_submissions_awaiting_decision", "id", postgresql_where=text("awaiting_decision"), sqlite_where=text("awaiting_decision")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    answer: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_correct: Mapped[bool | None] = mapped_column(Boolean)
    # The answer after a reviewer's fix-and-accept (aggregation uses it instead of `answer`).
    fixed_answer: Mapped[dict | None] = mapped_column(JSON)
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    time_spent_ms: Mapped[int | None] = mapped_column(Integer)
    # The reward, fixed when the answer is given (base × difficulty × streak then); credited to the ledger
    # only once `reward_state` is "paid".
    paid_points: Mapped[int] = mapped_column(Integer, default=0)
    paid_xp: Mapped[int] = mapped_column(Integer, default=0)
    paid_partner: Mapped[int] = mapped_column(Integer, default=0)
    reward_state: Mapped[str] = mapped_column(String(16), default="pending")
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # verified, or found not verified
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The stake tier's reward multiplier the settlement applied to the points (basis points; 10,000 = none).
    stake_multiplier_bp: Mapped[int] = mapped_column(Integer, default=10_000, server_default="10000")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Accepted, and its item not yet decided with it: quality's decision job (`quality.decisions`) weighs
    # the item's answers and clears the flag. Set with the INSERT, so an answer pays no extra statement.
    awaiting_decision: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ExamAttempt(db.Model):
    """A member's qualification exam for a pack: a fixed set of exam items answered in order and scored at
    the end. Exam answers live here (not as leases or submissions), so an exam can be retaken."""

    __tablename__ = "exam_attempts"
    __table_args__ = (Index("ix_exam_attempts_pack_user", "pack_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    item_ids: Mapped[list] = mapped_column(JSON, default=list)
    # {"<item id>": {"answer": {...}, "correct": bool}}
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    correct: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RevenueShare(db.Model):
    """Community campaigns: shares of the dataset's future revenue earned by an accepted label (paid out later)."""

    __tablename__ = "revenue_shares"
    __table_args__ = (Index("ix_revenue_shares_campaign_user", "campaign_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    pack_id: Mapped[int] = mapped_column(ForeignKey("task_packs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), unique=True)
    shares: Mapped[int] = mapped_column(Integer)
    # Set when the submission is later rejected: the shares no longer count.
    void: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

