"""Moderators' decisions about members: dismiss, warn, restrict (timed, scoped) or ban (escalating).

Rules:
- every decision needs a reason and writes an audit row in its transaction;
- a moderator never decides about themselves, and warns, restricts or bans only members below the
  moderator role: restricting (or banning) a moderator is refused;
- a restriction covers one scope (labeling, one pack, review, arena, airdrops) for 1 to 365 days;
- bans escalate: a first ban lasts `BAN_DAYS[0]` days, a second `BAN_DAYS[1]`, any later one has no end; a
  ban signs the member out everywhere (moderation/users.py), and the daily sweep lifts a ban whose time is up;
- the decision closes the member's open flags (dismissed, or actioned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from sapien.accounts.models import User
from sapien.database import unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.labeling.models import TaskPack
from sapien.moderation import service as audit
from sapien.moderation import users
from sapien.moderation.models import DECISION_ACTIONS, Decision, Flag

REASON_MAX = 500
SCOPES = ("labeling", "pack", "review", "arena", "airdrops")
BAN_DAYS = (7, 30)  # then no end
MAX_DAYS = 365


class DecisionError(DomainError):
    """A decision broke a rule; `field` names the form field."""


class DecisionForbidden(DecisionError):
    """This moderator may not decide this about this member."""


@dataclass(frozen=True)
class DecisionDraft:
    action: str
    reason: str
    scope: str | None = None
    pack_id: int | None = None
    days: int | None = None


def ban_days_for(previous_bans: int) -> int | None:
    """How long the next ban lasts after `previous_bans` bans (None: no end)."""
    return BAN_DAYS[previous_bans] if previous_bans < len(BAN_DAYS) else None


def _check(draft: DecisionDraft) -> str:
    reason = (draft.reason or "").strip()
    if draft.action not in DECISION_ACTIONS:
        raise DecisionError(_l("Choose dismiss, warn, restrict or ban."), "action")
    if not reason:
        raise DecisionError(_l("Give a reason: it goes into the audit log and the member sees it."), "reason")
    if len(reason) > REASON_MAX:
        raise DecisionError(_l("At most 500 characters."), "reason")
    if draft.action == "restrict":
        if draft.scope not in SCOPES:
            raise DecisionError(_l("Choose what the restriction covers."), "scope")
        if draft.scope == "pack" and not draft.pack_id:
            raise DecisionError(_l("Choose the pack the restriction covers."), "pack_id")
        if not draft.days or not 1 <= draft.days <= MAX_DAYS:
            raise DecisionError(_l("A restriction lasts 1 to 365 days."), "days")
    return reason


def _target(session, moderator: User, user_id: int, action: str) -> User:
    member = session.get(User, user_id)
    if member is None:
        raise DecisionError(_l("There is no such member."))
    if member.id == moderator.id:
        raise DecisionForbidden(_l("You cannot decide about your own account."))
    if action != "dismiss" and member.has_role("moderator"):
        raise DecisionForbidden(_l("Moderators and admins cannot be warned, restricted or banned here."))
    return member


def decide(moderator_id: int, user_id: int, draft: DecisionDraft, now: datetime) -> Decision:
    """Record one decision (and its ban, restriction and audit row) in one transaction."""
    reason = _check(draft)
    with unit_of_work() as session:
        moderator = session.get(User, moderator_id)
        if moderator is None or not moderator.has_role("moderator"):
            raise DecisionForbidden(_l("Only moderators decide about flags."))
        member = _target(session, moderator, user_id, draft.action)
        decision = Decision(user_id=member.id, moderator_id=moderator_id, action=draft.action, reason=reason, starts_at=now, created_at=now)
        if draft.action == "restrict":
            if draft.scope == "pack" and session.get(TaskPack, draft.pack_id) is None:
                raise DecisionError(_l("There is no such pack."), "pack_id")
            decision.scope, decision.pack_id = draft.scope, draft.pack_id if draft.scope == "pack" else None
            decision.ends_at = now + timedelta(days=draft.days)
        elif draft.action == "ban":
            previous = session.scalar(select(func.count()).select_from(Decision).where(Decision.user_id == member.id, Decision.action == "ban")) or 0
            days = ban_days_for(previous)
            decision.scope = "all"
            decision.ends_at = None if days is None else now + timedelta(days=days)
            if not member.is_banned:
                try:
                    users.ban(moderator_id, member.id, reason, now)
                except users.UserAdminForbidden as error:
                    raise DecisionForbidden(str(error)) from error
        session.add(decision)
        session.flush()
        session.execute(
            update(Flag).where(Flag.user_id == member.id, Flag.status == "open")
            .values(status="dismissed" if draft.action == "dismiss" else "actioned", decision_id=decision.id, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        scope = f" [{decision.scope}{':' + str(decision.pack_id) if decision.pack_id else ''} until {decision.ends_at:%Y-%m-%d}]" if decision.ends_at else ""
        audit.record(moderator_id, f"moderation.{draft.action}", f"user:{member.id}", f"decision #{decision.id}{scope}: {reason}", now)
    return decision


def decide_many(moderator_id: int, user_ids: list[int], draft: DecisionDraft, now: datetime) -> list[Decision]:
    """The same decision for every member of a cluster, all or none."""
    if not user_ids:
        raise DecisionError(_l("Choose at least one member."))
    with unit_of_work():
        return [decide(moderator_id, user_id, draft, now) for user_id in sorted(set(user_ids))]


def lift_expired_bans(now: datetime) -> int:
    """Unban members whose last ban has ended (the daily sweep)."""
    lifted = 0
    ended = db.session.scalars(
        select(Decision).where(Decision.action == "ban", Decision.lifted_at.is_(None), Decision.ends_at.is_not(None), Decision.ends_at <= now)
    ).all()
    for decision in ended:
        with unit_of_work() as session:
            # Locked and read again: a sweep running at the same moment lifts it once.
            if session.get(Decision, decision.id, with_for_update=True, populate_existing=True).lifted_at is not None:
                continue
            later = session.scalar(select(func.count()).select_from(Decision).where(
                Decision.user_id == decision.user_id, Decision.action == "ban", Decision.lifted_at.is_(None), Decision.id != decision.id,
                (Decision.ends_at.is_(None)) | (Decision.ends_at > now),
            ))
            session.get(Decision, decision.id).lifted_at = now
            member = session.get(User, decision.user_id)
            if not later and member is not None and member.is_banned:
                users.unban(None, member.id, f"ban of decision #{decision.id} ended", now)
                lifted += 1
    return lifted


def decisions_for(user_id: int) -> list[Decision]:
    return list(db.session.scalars(select(Decision).where(Decision.user_id == user_id).order_by(Decision.id.desc())))
