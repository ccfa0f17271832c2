"""User administration: find a member, change their role, ban and unban them, every action audited.

Rules, for an actor signed in on the site (`actor_id`):
- moderators and admins act only on members of a lower role than their own, never on themselves, so a
  moderator cannot ban another moderator and an admin cannot demote another admin;
- only admins change roles, to any role up to their own;
- a ban and an unban need a reason, and every action writes an audit row in the same transaction.
A command-line operator (`actor_id=None`, `flask users …`) stands above every role.

A ban bumps the member's session version and changes their user row, whose cached copy (see
`member_cache`) is marked stale once the transaction commits: their next request, on any process, is
signed out, whether the ban came from the page or from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from sapien.accounts.models import ROLE_RANK, ROLES, User
from sapien.accounts.service import normalise_email, username_key
from sapien.database import unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.moderation import service as audit
from sapien.moderation.models import AuditLog

REASON_MAX = 500
SEARCH_LIMIT = 50


class UserAdminError(DomainError):
    """A rule of user administration was broken; `field` names the form field, if any."""


class UserAdminForbidden(UserAdminError):
    """The actor may not do this to this member at all."""


@dataclass(frozen=True)
class UserAdminPage:
    user: User
    can_ban: bool
    can_change_role: bool
    grantable_roles: tuple[str, ...]
    history: list[AuditLog]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_users(query: str, limit: int = SEARCH_LIMIT) -> list[User]:
    """Members whose username or display name contains `query` (case-insensitively), or whose email is
    `query`; the newest members when the query is empty."""
    statement = select(User).order_by(User.id.desc()).limit(limit)
    query = query.strip()
    if query:
        pattern = f"%{_escape_like(username_key(query))}%"
        statement = statement.where(or_(
            User.username_key.like(pattern, escape="\\"),
            User.display_name.ilike(f"%{_escape_like(query)}%", escape="\\"),
            User.email == normalise_email(query),
        ))
    return list(db.session.scalars(statement))


def _actor(actor_id: int | None) -> User | None:
    return None if actor_id is None else db.session.get(User, actor_id)


def may_act_on(actor: User | None, target: User) -> bool:
    """A moderator or admin outranking the target, and not the target themselves (None: the command line)."""
    if actor is None:
        return True
    return actor.id != target.id and actor.has_role("moderator") and ROLE_RANK[actor.role] > ROLE_RANK[target.role]


def grantable_roles(actor: User | None) -> tuple[str, ...]:
    if actor is None:
        return ROLES
    if not actor.has_role("admin"):
        return ()
    return tuple(role for role in ROLES if ROLE_RANK[role] <= ROLE_RANK[actor.role])


def admin_page(actor_id: int, user_id: int) -> UserAdminPage | None:
    user = db.session.get(User, user_id)
    if user is None:
        return None
    actor = _actor(actor_id)
    allowed = may_act_on(actor, user)
    history = list(db.session.scalars(
        select(AuditLog).where(AuditLog.target == f"user:{user_id}").order_by(AuditLog.id.desc()).limit(50)
    ))
    roles = grantable_roles(actor) if allowed else ()
    return UserAdminPage(user=user, can_ban=allowed, can_change_role=bool(roles), grantable_roles=roles, history=history)


def _target(session, actor: User | None, user_id: int) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserAdminError(_l("There is no such member."))
    if not may_act_on(actor, user):
        raise UserAdminForbidden(_l("You cannot change this member's account."))
    return user


def _reason(reason: str, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise UserAdminError(_l("Give a reason: it goes into the audit log."), "reason")
    if len(reason) > REASON_MAX:
        raise UserAdminError(_l("At most 500 characters."), "reason")
    return reason


def change_role(actor_id: int | None, user_id: int, role: str, reason: str, now: datetime) -> User:
    reason = _reason(reason, required=False)
    with unit_of_work() as session:
        actor = _actor(actor_id)
        user = _target(session, actor, user_id)
        if role not in grantable_roles(actor):
            if actor is not None and not actor.has_role("admin"):
                raise UserAdminForbidden(_l("Only admins change roles."))
            raise UserAdminError(_l("Choose a role from the list."), "role")
        if user.role == role:
            raise UserAdminError(_l("This member already has that role."), "role")
        previous, user.role = user.role, role
        audit.record(actor_id, "user.role", f"user:{user.id}", f"{previous} → {role}" + (f": {reason}" if reason else ""), now)
    return user


def ban(actor_id: int | None, user_id: int, reason: str, now: datetime) -> User:
    reason = _reason(reason, required=True)
    with unit_of_work() as session:
        user = _target(session, _actor(actor_id), user_id)
        if user.is_banned:
            raise UserAdminError(_l("This member is already banned."))
        user.is_banned = True
        user.ban_reason = reason
        user.session_version = User.session_version + 1  # every session of theirs dies now
        audit.record(actor_id, "user.ban", f"user:{user.id}", reason, now)
    return user


def unban(actor_id: int | None, user_id: int, reason: str, now: datetime) -> User:
    reason = _reason(reason, required=True)
    with unit_of_work() as session:
        user = _target(session, _actor(actor_id), user_id)
        if not user.is_banned:
            raise UserAdminError(_l("This member is not banned."))
        user.is_banned = False
        user.ban_reason = None
        audit.record(actor_id, "user.unban", f"user:{user.id}", reason, now)
    return user
