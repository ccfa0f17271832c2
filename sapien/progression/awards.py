"""Badges held by members: rule badges, manual awards, revocations, the gallery and a badge's page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, true, update

from sapien import events
from sapien.accounts.models import User
from sapien.accounts.service import count_members
from sapien.database import after_commit, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.moderation.service import record
from sapien.notifications.service import notify
from sapien.progression.badges import BADGES, CATALOGUE, Badge, BadgeStats, earned_by_rules, get_badge
from sapien.progression.errors import BadgeError
from sapien.progression.models import (
    BadgeAward,
    MemberProgress,
    MintRequest,
)


def badge_stats(row: MemberProgress) -> BadgeStats:
    return BadgeStats(
        level=row.level,
        labels_accepted=row.labels_accepted,
        gold_answered=row.gold_answered,
        gold_correct=row.gold_correct,
        reviews_completed=row.reviews_completed,
        quests_completed=row.quests_completed,
        guilds_joined=row.guilds_joined,
        longest_streak=row.longest_streak,
        arena_matches=row.arena_matches or 0,
        arena_wins=row.arena_wins or 0,
    )


def award_rule_badges(user_id: int, row: MemberProgress, now: datetime, before: BadgeStats | None = None) -> list[str]:
    """Award the rule badges the member's counters earn. With `before` (the stats before this event),
    only rules this event newly satisfied are considered, which costs no query at all in the common
    case; without it (a sync), every earned badge not yet held is awarded. A revoked badge is never
    brought back by a rule."""
    earned = earned_by_rules(badge_stats(row))
    if before is not None:
        already = set(earned_by_rules(before))
        earned = [slug for slug in earned if slug not in already]
    if not earned:
        return []
    held = set(db.session.scalars(select(BadgeAward.badge_slug).where(BadgeAward.user_id == user_id)))
    awarded = []
    for slug in earned:
        if slug not in held and award_badge(user_id, slug, now, quiet_if_held=True) is not None:
            awarded.append(slug)
    return awarded


def award_badge(
    user_id: int,
    slug: str,
    now: datetime,
    *,
    awarded_by: int | None = None,
    reason: str = "",
    quiet_if_held: bool = False,
) -> BadgeAward | None:
    """Award a badge once. A rule or reward (`quiet_if_held`) re-awarding a held badge does nothing;
    a moderator doing so gets an error. A moderator may restore a revoked badge."""
    badge = get_badge(slug)
    if badge is None:
        raise BadgeError(_l("There is no such badge."), "badge")
    if awarded_by is not None and not (reason or "").strip():
        raise BadgeError(_l("Give a reason for awarding this badge."), "reason")

    with unit_of_work() as session:
        award_id = session.execute(
            dialect_insert(BadgeAward)
            .values(user_id=user_id, badge_slug=slug, awarded_at=now, awarded_by=awarded_by, reason=(reason or "").strip())
            .on_conflict_do_nothing(index_elements=["user_id", "badge_slug"])
            .returning(BadgeAward.id)
        ).scalar()
        if award_id is None:
            award = session.scalars(
                select(BadgeAward)
                .where(BadgeAward.user_id == user_id, BadgeAward.badge_slug == slug)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            if award.revoked_at is None or awarded_by is None:
                if quiet_if_held:
                    return None
                raise BadgeError(_l("This member already holds that badge."), "badge")
            award.revoked_at = award.revoked_by = award.revoke_reason = None
            award.awarded_at, award.awarded_by, award.reason = now, awarded_by, reason.strip()
            mint = session.scalar(select(MintRequest).where(MintRequest.award_id == award.id))
            if mint is not None and mint.state == "cancelled":
                mint.state, mint.updated_at = "pending", now
        else:
            award = session.get(BadgeAward, award_id)
            session.add(MintRequest(award_id=award.id, user_id=user_id, badge_slug=slug, state="pending", created_at=now, updated_at=now))
        if awarded_by is not None:
            record(awarded_by, "badge.award", f"badge_award:{award.id}", reason.strip(), now)
        notify(user_id, "badge", {"badge": slug}, link=f"/badges/{slug}", key=f"badge:{award.id}:{now.isoformat()}", now=now)
        session.flush()
        awarded_id = award.id
        after_commit(lambda: events.badge_awarded.send(None, user_id=user_id, badge_slug=slug, award_id=awarded_id, now=now))
    return award


def revoke_badge(award_id: int, *, actor_id: int, reason: str, now: datetime) -> BadgeAward:
    if not (reason or "").strip():
        raise BadgeError(_l("Give a reason for revoking this badge."), "reason")

    with unit_of_work() as session:
        award = session.get(BadgeAward, award_id, with_for_update=True)
        if award is None:
            raise LookupError(award_id)
        if award.revoked_at is not None:
            raise BadgeError(_l("That badge is already revoked."))
        award.revoked_at, award.revoked_by, award.revoke_reason = now, actor_id, reason.strip()
        session.execute(
            update(MintRequest)
            .where(MintRequest.award_id == award_id, MintRequest.state == "pending")
            .values(state="cancelled", updated_at=now)
        )
        events.badge_revoked.send(None, user_id=award.user_id, badge_slug=award.badge_slug, award_id=award.id, now=now)
        record(actor_id, "badge.revoke", f"badge_award:{award.id}", reason.strip(), now)
        notify(award.user_id, "badge_revoked", {"badge": award.badge_slug}, now=now)
    return award


@dataclass(frozen=True)
class HeldBadge:
    badge: Badge
    award: BadgeAward
    mint_state: str | None


def member_badges(user_id: int) -> list[HeldBadge]:
    rows = db.session.execute(
        select(BadgeAward, MintRequest.state)
        .outerjoin(MintRequest, MintRequest.award_id == BadgeAward.id)
        .where(BadgeAward.user_id == user_id, BadgeAward.revoked_at.is_(None))
        .order_by(BadgeAward.awarded_at.desc())
    ).all()
    return [HeldBadge(BADGES[a.badge_slug], a, state) for a, state in rows if a.badge_slug in BADGES]


def _member_count() -> int:
    return count_members()


@dataclass(frozen=True)
class GalleryBadge:
    badge: Badge
    holders: int
    percent: float  # 0..1 of members holding it
    held: bool


def badge_gallery(viewer_id: int | None) -> list[GalleryBadge]:
    counts = dict(
        db.session.execute(
            select(BadgeAward.badge_slug, func.count(BadgeAward.id))
            .where(BadgeAward.revoked_at.is_(None))
            .group_by(BadgeAward.badge_slug)
        ).all()
    )
    held = set()
    if viewer_id is not None:
        held = set(
            db.session.scalars(
                select(BadgeAward.badge_slug).where(BadgeAward.user_id == viewer_id, BadgeAward.revoked_at.is_(None))
            )
        )
    members = max(_member_count(), 1)
    return [
        GalleryBadge(badge, counts.get(badge.slug, 0), counts.get(badge.slug, 0) / members, badge.slug in held)
        for badge in CATALOGUE
    ]


@dataclass
class BadgePage:
    badge: Badge
    holders: int
    percent: float
    recent_holders: list = field(default_factory=list)  # (username, display_name, awarded_at)
    viewer_award: BadgeAward | None = None
    viewer_mint_state: str | None = None


def badge_page(slug: str, viewer_id: int | None, limit: int = 20, include_hidden: bool = False) -> BadgePage | None:
    """A badge with its rarity and latest holders. Members hidden from public boards are listed only
    to moderators (`include_hidden`) and to themselves; they always count towards rarity."""

    badge = get_badge(slug)
    if badge is None:
        return None
    active = and_(BadgeAward.badge_slug == slug, BadgeAward.revoked_at.is_(None))
    holders = db.session.scalar(select(func.count(BadgeAward.id)).where(active)) or 0
    recent = db.session.execute(
        select(User.username, User.display_name, BadgeAward.awarded_at, BadgeAward.id)
        .join(User, User.id == BadgeAward.user_id)
        .where(active, User.is_banned.is_(False))
        .where(true() if include_hidden else or_(User.hide_from_boards.is_(False), User.id == viewer_id))
        .order_by(BadgeAward.awarded_at.desc())
        .limit(limit)
    ).all()
    page = BadgePage(badge, holders, holders / max(_member_count(), 1), [tuple(r) for r in recent])
    if viewer_id is not None:
        found = db.session.execute(
            select(BadgeAward, MintRequest.state)
            .outerjoin(MintRequest, MintRequest.award_id == BadgeAward.id)
            .where(BadgeAward.user_id == viewer_id, BadgeAward.badge_slug == slug, BadgeAward.revoked_at.is_(None))
        ).first()
        if found:
            page.viewer_award, page.viewer_mint_state = found
    return page
