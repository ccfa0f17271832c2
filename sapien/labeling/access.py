"""Who may work in a pack (level, reputation, stake, exam), the marketplace, and who may see media."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from sapien import events
from sapien.database import as_utc
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT, format_tokens
from sapien.labeling import media as media_files
from sapien.labeling.errors import LabelingNotFound, PackLocked
from sapien.labeling.models import (
    DIFFICULTIES,
    TASK_TYPES,
    Campaign,
    ExamAttempt,
    Item,
    Lease,
    Media,
    TaskPack,
)
from sapien.labeling.packs import PackCounts, pack_counts, reward_multiplier, round_down
from sapien.ledger.models import Balance
from sapien.progression.levels import level_for_xp


@dataclass(frozen=True)
class Standing:
    """What a member brings to a pack's unlock requirements."""

    level: int
    reputation: int
    stake: int
    passed_exams: frozenset[int]


def member_standing(user_id: int) -> Standing:
    balances = dict(
        db.session.execute(
            select(Balance.currency, Balance.amount).where(Balance.user_id == user_id, Balance.currency.in_(("xp", "stake")))
        ).all()
    )
    passed = frozenset(
        db.session.scalars(select(ExamAttempt.pack_id).where(ExamAttempt.user_id == user_id, ExamAttempt.passed.is_(True)))
    )
    return Standing(
        level=level_for_xp(balances.get("xp", 0)),
        reputation=int(events.reputation_of.ask(user_id=user_id)),
        stake=int(balances.get("stake", 0)),
        passed_exams=passed,
    )


@dataclass(frozen=True)
class PackAccess:
    unlocked: bool
    reasons: list = field(default_factory=list)
    needs_exam: bool = False  # the only thing missing is the exam


def access_for(pack: TaskPack, standing: Standing) -> PackAccess:
    reasons = []
    if pack.status != "open":
        reasons.append({"draft": _l("This pack is not published yet."), "paused": _l("This pack is paused.")}.get(pack.status, _l("This pack is closed.")))
    if standing.level < pack.min_level:
        reasons.append(_l("Reach level %(needed)s (you are level %(level)s).", needed=pack.min_level, level=standing.level))
    if standing.reputation < pack.min_reputation:
        reasons.append(
            _l("Reach a reputation of %(needed)s (yours is %(reputation)s).", needed=pack.min_reputation, reputation=standing.reputation)
        )
    if standing.stake < pack.min_stake * TOKEN_UNIT:
        reasons.append(
            _l("Stake at least %(needed)s tokens (you have %(stake)s staked).", needed=format_tokens(pack.min_stake * TOKEN_UNIT),
               stake=format_tokens(standing.stake))
        )
    exam_missing = pack.exam_required and pack.id not in standing.passed_exams
    if exam_missing:
        reasons.append(_l("Pass the pack's qualification exam."))
    return PackAccess(unlocked=not reasons, reasons=reasons, needs_exam=exam_missing and len(reasons) == 1)


def pack_access(user_id: int, pack_id: int, now: datetime) -> PackAccess:
    pack = db.session.get(TaskPack, pack_id)
    if pack is None:
        raise LabelingNotFound(_l("That pack does not exist."))
    return access_for(pack, _standing_for(user_id, pack))


def _standing_for(user_id: int, pack: TaskPack) -> Standing:
    """The member's standing, reading only what this pack's requirements need (the lease hot path)."""
    if pack.min_level <= 1 and pack.min_reputation <= 0 and pack.min_stake <= 0 and not pack.exam_required:
        return Standing(level=1, reputation=0, stake=0, passed_exams=frozenset())
    return member_standing(user_id)


def member_access(user_id: int, pack: TaskPack) -> PackAccess:
    return access_for(pack, _standing_for(user_id, pack))


def check_unlocked(user_id: int, pack: TaskPack, access: PackAccess | None = None) -> None:
    """Refuse a member the pack's requirements lock out, with the first reason; `access` when the caller
    already worked it out (`member_access`)."""
    access = access if access is not None else member_access(user_id, pack)
    if not access.unlocked:
        raise PackLocked(access.reasons[0])


# --- marketplace ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackCard:
    pack: TaskPack
    campaign: Campaign
    access: PackAccess
    points: int
    xp: int
    partner: int
    shares: int
    remaining: int
    all_done: bool = False  # no item left for anyone: the card offers no "Start"


MARKET_SORTS = ("reward", "time", "newest")


def rewards_after_difficulty(pack: TaskPack, campaign: Campaign) -> tuple[int, int, int, int]:
    """(points, xp, partner, revenue shares) one accepted label earns before any streak bonus."""
    multiplier = reward_multiplier(pack.task_type, pack.difficulty)
    points = round_down(pack.reward_points * multiplier) if campaign.kind != "community" else 0
    partner = round_down(pack.partner_reward * multiplier) if campaign.kind == "dual" else 0
    shares = round_down(pack.revenue_shares * multiplier) if campaign.kind == "community" else 0
    return points, round_down(pack.reward_xp * multiplier), partner, shares


def marketplace(user_id: int, *, task_type: str = "", difficulty: str = "", unlocked: str = "", sort: str = "reward") -> list[PackCard]:
    """Open packs of active campaigns (never drafts), with what each pays and whether the member can do it."""
    query = (
        select(TaskPack, Campaign)
        .join(Campaign, Campaign.id == TaskPack.campaign_id)
        .where(TaskPack.status == "open", Campaign.status == "active")
    )
    if task_type in TASK_TYPES:
        query = query.where(TaskPack.task_type == task_type)
    if difficulty in DIFFICULTIES:
        query = query.where(TaskPack.difficulty == difficulty)
    rows = db.session.execute(query).all()
    counts = pack_counts([pack.id for pack, _campaign in rows]) if rows else {}
    standing = member_standing(user_id)
    cards = []
    for pack, campaign in rows:
        access = access_for(pack, standing)
        if unlocked == "unlocked" and not access.unlocked:
            continue
        if unlocked == "locked" and access.unlocked:
            continue
        points, xp, partner, shares = rewards_after_difficulty(pack, campaign)
        pack_count = counts.get(pack.id, PackCounts())
        cards.append(PackCard(pack, campaign, access, points, xp, partner, shares, pack_count.open_items, pack_count.all_done))
    if sort == "time":
        cards.sort(key=lambda card: (card.pack.estimated_seconds, -card.pack.id))
    elif sort == "newest":
        cards.sort(key=lambda card: (as_utc(card.pack.created_at), card.pack.id), reverse=True)
    else:
        cards.sort(key=lambda card: (card.points + card.xp + card.shares, card.pack.id), reverse=True)
    # Packs the member can do first; locked ones after, each group in the chosen order.
    cards.sort(key=lambda card: not card.access.unlocked)
    return cards


def media_for_viewer(media_id: int, user_id: int, *, is_moderator: bool, now: datetime) -> Media | None:
    """The media row if this viewer may see it: moderators; members who may work in its pack; members
    who were shown its item (a lease or an exam). None otherwise (reviewers, whom quality knows, may see
    any media: the media route asks quality about them)."""
    media = db.session.get(Media, media_id)
    if media is None:
        return None
    if is_moderator:
        return media
    pack = db.session.get(TaskPack, media.pack_id)
    if pack.status == "open" and access_for(pack, member_standing(user_id)).unlocked:
        return media
    item_ids = select(Item.id).where(Item.media_id == media.id)
    if db.session.scalar(select(Lease.id).where(Lease.user_id == user_id, Lease.item_id.in_(item_ids)).limit(1)):
        return media
    attempts = db.session.scalars(select(ExamAttempt.item_ids).where(ExamAttempt.user_id == user_id, ExamAttempt.pack_id == pack.id))
    wanted = set(db.session.scalars(item_ids))
    if any(wanted & set(ids) for ids in attempts):
        return media
    return None


def media_path(media: Media) -> Path:
    return media_files.media_root() / media.path
