"""Airdrop tables: snapshots (config, run state, hashes, freezing, publishing), one row per member's
result, appeals against exclusions, and the guilds moderators recognize.

Token amounts are base units (10**-6 of a token) and can pass 2**63, so they are stored as decimal
strings: exact on every database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db

# queued → running → done | failed; a done snapshot is proposed, then frozen by a second moderator.
SNAPSHOT_STATES = ("queued", "running", "done", "failed")
APPEAL_STATES = ("open", "upheld", "overturned")


class AirdropSnapshot(db.Model):
    __tablename__ = "airdrop_snapshots"
    __table_args__ = (CheckConstraint(f"status IN {SNAPSHOT_STATES!r}", name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    config: Mapped[dict] = mapped_column(JSON)  # the validated config, as `SnapshotConfig.to_json()`
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    total_amount: Mapped[str] = mapped_column(String(80))  # base units
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    eligible_count: Mapped[int] = mapped_column(Integer, default=0)
    excluded_count: Mapped[int] = mapped_column(Integer, default=0)
    allocated_amount: Mapped[str] = mapped_column(String(80), default="0")
    input_hash: Mapped[str | None] = mapped_column(String(66))
    result_hash: Mapped[str | None] = mapped_column(String(66))
    merkle_root: Mapped[str | None] = mapped_column(String(66))
    tree_dump: Mapped[str | None] = mapped_column(Text)  # the standard-v1 JSON
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    proposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    frozen_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Publishing: the distributor deployed (through the outbox) and funded on one chain.
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    claim_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    distributor_address: Mapped[str | None] = mapped_column(String(42))
    funded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_error: Mapped[str | None] = mapped_column(Text)

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    @property
    def progress_percent(self) -> int:
        if self.status == "done":
            return 100
        return 0 if not self.progress_total else min(100, self.progress_done * 100 // self.progress_total)


class SnapshotEntry(db.Model):
    """One member in one snapshot: each criterion's value and either an allocation or an exclusion."""

    __tablename__ = "airdrop_entries"
    __table_args__ = (UniqueConstraint("snapshot_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("airdrop_snapshots.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str | None] = mapped_column(String(42))
    values: Mapped[dict] = mapped_column(JSON)
    score: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[str] = mapped_column(String(80), default="0")
    # Set for an excluded member: the rule's name and the human reason.
    excluded_rule: Mapped[str | None] = mapped_column(String(48))
    excluded_reason: Mapped[str | None] = mapped_column(Text)
    tree_index: Mapped[int | None] = mapped_column(Integer)


class AirdropAppeal(db.Model):
    """A member's appeal against their exclusion from a snapshot; one per member and snapshot."""

    __tablename__ = "airdrop_appeals"
    __table_args__ = (
        UniqueConstraint("snapshot_id", "user_id"),
        CheckConstraint(f"status IN {APPEAL_STATES!r}", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("airdrop_snapshots.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(48))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecognizedGuild(db.Model):
    """A guild moderators recognize: its members meet the "recognized guild" criterion."""

    __tablename__ = "airdrop_recognized_guilds"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    recognized_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recognized_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
