"""Guild membership: lookups other areas use, requirements, joining (open / by application /
invite-only), roles, leadership, kicks.

One guild at a time (a unique membership per member in the database). Requirements to join: a minimum
level (from ledger XP, asked of progression) and a minimum reputation (asked of quality); an
invitation from the guild waives them (the leaders chose that member). Leaders and officers manage;
only the leader changes roles, hands over leadership or disbands (by leaving as the last member).
Every kick is written to the audit log with its reason.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.accounts.service import get_by_username
from sapien.database import after_commit, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.guilds.models import Guild, GuildApplication, GuildInvitation, GuildMembership
from sapien.moderation.service import record

NAME_MIN, NAME_MAX = 3, 48
DESCRIPTION_MAX = 1000
MESSAGE_MAX = 500
DIRECTORY_PAGE = 20
MANAGERS = ("leader", "officer")


class GuildError(DomainError):
    pass


class GuildForbidden(GuildError):
    """The member may not do that in this guild (a 403)."""


class GuildNotFound(GuildError):
    """No such guild, or no such application/invitation in it (a 404)."""


# --- small lookups used by other areas -----------------------------------------------------------

def guild_names(ids) -> dict[int, tuple[str, str]]:
    ids = list(ids)
    if not ids:
        return {}
    rows = db.session.execute(select(Guild.id, Guild.name, Guild.slug).where(Guild.id.in_(ids), Guild.disbanded_at.is_(None)))
    return {gid: (name, slug) for gid, name, slug in rows}


def guild_id_of(user_id: int) -> int | None:
    return db.session.scalar(select(GuildMembership.guild_id).where(GuildMembership.user_id == user_id))


def member_ids(guild_id: int) -> list[int]:
    """The ids of the guild's current members (e.g. to notify them all)."""
    return list(
        db.session.scalars(select(GuildMembership.user_id).where(GuildMembership.guild_id == guild_id).order_by(GuildMembership.user_id))
    )


def all_memberships() -> dict[int, int]:
    """{user id: guild id} for every member in a guild (for rebuilding boards)."""
    return dict(db.session.execute(select(GuildMembership.user_id, GuildMembership.guild_id)).all())


def membership_of(user_id: int) -> GuildMembership | None:
    return db.session.scalar(select(GuildMembership).where(GuildMembership.user_id == user_id))


def get_guild_by_slug(slug: str) -> Guild:
    guild = db.session.scalar(select(Guild).where(Guild.slug == slug, Guild.disbanded_at.is_(None)))
    if guild is None:
        raise GuildNotFound(_l("There is no such guild."))
    return guild


def member_count(guild_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(GuildMembership).where(GuildMembership.guild_id == guild_id)) or 0


# --- requirements --------------------------------------------------------------------------------

def member_level(user_id: int) -> int:
    """The member's level (progression answers `events.level_of`)."""
    return int(events.level_of.ask(user_id=user_id))


def member_reputation(user_id: int) -> int:
    """The member's reputation (quality answers `events.reputation_of`)."""
    return int(events.reputation_of.ask(user_id=user_id))


def check_requirements(user_id: int, guild: Guild) -> None:
    level = member_level(user_id)
    if level < guild.min_level:
        raise GuildError(
            _l("%(guild)s asks for level %(needed)s; you are level %(level)s.", guild=guild.name, needed=guild.min_level, level=level)
        )
    if guild.min_reputation > 0:
        reputation = member_reputation(user_id)
        if reputation < guild.min_reputation:
            raise GuildError(
                _l(
                    "%(guild)s asks for a reputation of %(needed)s; yours is %(reputation)s.",
                    guild=guild.name,
                    needed=guild.min_reputation,
                    reputation=reputation,
                )
            )


def _max_members() -> int:
    return int(current_app.config.get("GUILD_MAX_MEMBERS", 50))


def _check_room(guild: Guild) -> None:
    if member_count(guild.id) >= _max_members():
        raise GuildError(_l("%(guild)s is full.", guild=guild.name))


def check_not_in_a_guild(user_id: int) -> None:
    if guild_id_of(user_id) is not None:
        raise GuildError(_l("You are already in a guild. Leave it before joining another."))


def add_member(guild: Guild, user_id: int, role: str, now: datetime) -> GuildMembership:
    """Insert the membership; the unique user_id makes a racing second guild fail cleanly."""
    session = db.session
    try:
        with session.begin_nested():
            membership = GuildMembership(guild_id=guild.id, user_id=user_id, role=role, joined_at=now)
            session.add(membership)
            session.flush()
    except IntegrityError:
        raise GuildError(_l("You are already in a guild. Leave it before joining another.")) from None
    # Any other pending requests of this member are void now.
    session.execute(
        update(GuildApplication)
        .where(GuildApplication.user_id == user_id, GuildApplication.status == "pending", GuildApplication.guild_id != guild.id)
        .values(status="withdrawn", decided_at=now)
    )
    guild_id = guild.id
    after_commit(lambda: events.guild_joined.send(None, user_id=user_id, guild_id=guild_id, now=now))
    return membership


def _announce_left(user_id: int, guild_id: int, now: datetime) -> None:
    after_commit(lambda: events.guild_left.send(None, user_id=user_id, guild_id=guild_id, now=now))


# --- joining -----------------------------------------------------------------------------------------

def live_guild(guild_id: int, lock: bool = False) -> Guild:
    query = select(Guild).where(Guild.id == guild_id, Guild.disbanded_at.is_(None))
    guild = db.session.scalar(query.with_for_update() if lock else query)
    if guild is None:
        raise GuildNotFound(_l("There is no such guild."))
    return guild


def join(user_id: int, guild_id: int, now: datetime) -> GuildMembership:
    """Join an open guild directly."""
    with unit_of_work():
        guild = live_guild(guild_id, lock=True)
        if guild.join_policy != "open":
            raise GuildError(
                _l("%(guild)s takes applications: apply instead.", guild=guild.name)
                if guild.join_policy == "application"
                else _l("%(guild)s is invite-only.", guild=guild.name)
            )
        check_not_in_a_guild(user_id)
        check_requirements(user_id, guild)
        _check_room(guild)
        return add_member(guild, user_id, "member", now)


def apply(user_id: int, guild_id: int, message: str, now: datetime) -> GuildApplication:
    message = (message or "").strip()
    if len(message) > MESSAGE_MAX:
        raise GuildError(_l("Keep your message under 500 characters."), "message")
    with unit_of_work() as session:
        guild = live_guild(guild_id)
        if guild.join_policy != "application":
            raise GuildError(_l("%(guild)s does not take applications.", guild=guild.name))
        check_not_in_a_guild(user_id)
        check_requirements(user_id, guild)
        pending = session.scalar(
            select(GuildApplication.id).where(
                GuildApplication.guild_id == guild.id, GuildApplication.user_id == user_id, GuildApplication.status == "pending"
            )
        )
        if pending:
            raise GuildError(_l("You have already applied to %(guild)s; wait for an answer.", guild=guild.name))
        application = GuildApplication(guild_id=guild.id, user_id=user_id, message=message, status="pending", created_at=now)
        try:
            with session.begin_nested():
                session.add(application)
                session.flush()
        except IntegrityError:
            raise GuildError(_l("You have already applied to %(guild)s; wait for an answer.", guild=guild.name)) from None
    return application


def withdraw_application(user_id: int, application_id: int, now: datetime) -> None:
    with unit_of_work() as session:
        application = session.get(GuildApplication, application_id)
        if application is None or application.user_id != user_id:
            raise GuildNotFound(_l("There is no such application."))
        if application.status != "pending":
            raise GuildError(_l("That application was already answered."))
        application.status, application.decided_at = "withdrawn", now


def decide_application(actor_id: int, guild_id: int, application_id: int, accept: bool, now: datetime) -> GuildApplication:
    with unit_of_work() as session:
        guild = live_guild(guild_id, lock=True)
        require_role(actor_id, guild.id, MANAGERS)
        application = session.get(GuildApplication, application_id, with_for_update=True)
        if application is None or application.guild_id != guild.id:
            raise GuildNotFound(_l("There is no such application."))
        if application.status != "pending":
            raise GuildError(_l("That application was already answered."))
        if accept:
            if guild_id_of(application.user_id) is not None:
                raise GuildError(_l("That member has joined another guild meanwhile."))
            _check_room(guild)
            add_member(guild, application.user_id, "member", now)
        application.status = "accepted" if accept else "declined"
        application.decided_at, application.decided_by = now, actor_id
    return application


def invite(actor_id: int, guild_id: int, username: str, now: datetime) -> GuildInvitation:
    with unit_of_work() as session:
        guild = live_guild(guild_id)
        require_role(actor_id, guild.id, MANAGERS)
        invitee = get_by_username((username or "").strip())
        if invitee is None or invitee.is_banned:
            raise GuildError(_l("There is no member with that username."), "username")
        if guild_id_of(invitee.id) == guild.id:
            raise GuildError(_l("%(name)s is already in your guild.", name=invitee.display_name), "username")
        if guild_id_of(invitee.id) is not None:
            raise GuildError(_l("%(name)s is already in a guild.", name=invitee.display_name), "username")
        invitation = GuildInvitation(guild_id=guild.id, user_id=invitee.id, invited_by=actor_id, status="pending", created_at=now)
        try:
            with session.begin_nested():
                session.add(invitation)
                session.flush()
        except IntegrityError:
            raise GuildError(_l("%(name)s already has an invitation from you.", name=invitee.display_name), "username") from None
    return invitation


def respond_invitation(user_id: int, invitation_id: int, accept: bool, now: datetime) -> GuildInvitation:
    with unit_of_work() as session:
        invitation = session.get(GuildInvitation, invitation_id, with_for_update=True)
        if invitation is None or invitation.user_id != user_id:
            raise GuildNotFound(_l("There is no such invitation."))
        if invitation.status != "pending":
            raise GuildError(_l("That invitation was already answered."))
        if accept:
            guild = live_guild(invitation.guild_id, lock=True)
            check_not_in_a_guild(user_id)
            _check_room(guild)
            add_member(guild, user_id, "member", now)
        invitation.status = "accepted" if accept else "declined"
        invitation.decided_at = now
    return invitation


# --- leaving, roles, kicks -----------------------------------------------------------------------

def require_role(actor_id: int, guild_id: int, roles: tuple[str, ...]) -> GuildMembership:
    membership = db.session.scalar(
        select(GuildMembership).where(GuildMembership.user_id == actor_id, GuildMembership.guild_id == guild_id)
    )
    if membership is None or membership.role not in roles:
        raise GuildForbidden(_l("Only the guild's leader or officers can do that.") if "officer" in roles else _l("Only the guild's leader can do that."))
    return membership


def _member_in(guild_id: int, user_id: int) -> GuildMembership:
    membership = db.session.scalar(
        select(GuildMembership).where(GuildMembership.user_id == user_id, GuildMembership.guild_id == guild_id).with_for_update()
    )
    if membership is None:
        raise GuildNotFound(_l("That member is not in this guild."))
    return membership


def leave(user_id: int, now: datetime) -> int:
    """Leave your guild; a leader must hand over first, unless they are the last member (the guild is disbanded)."""
    with unit_of_work() as session:
        membership = session.scalar(select(GuildMembership).where(GuildMembership.user_id == user_id).with_for_update())
        if membership is None:
            raise GuildError(_l("You are not in a guild."))
        guild_id = membership.guild_id
        if membership.role == "leader":
            if member_count(guild_id) > 1:
                raise GuildError(_l("Hand the leadership to another member before you leave."))
            guild = live_guild(guild_id, lock=True)
            guild.disbanded_at = now
            guild.name_key = f"~disbanded-{guild.id}"
            for model in (GuildApplication, GuildInvitation):
                session.execute(
                    update(model).where(model.guild_id == guild_id, model.status == "pending").values(status="withdrawn", decided_at=now)
                )
        session.delete(membership)
        _announce_left(user_id, guild_id, now)
    return guild_id


def set_role(actor_id: int, guild_id: int, target_id: int, role: str, now: datetime) -> None:
    if role not in ("officer", "member"):
        raise GuildError(_l("Choose a role from the list."), "role")
    with unit_of_work():
        live_guild(guild_id)
        require_role(actor_id, guild_id, ("leader",))
        target = _member_in(guild_id, target_id)
        if target.role == "leader":
            raise GuildError(_l("Hand over the leadership instead."))
        target.role = role


def transfer_leadership(actor_id: int, guild_id: int, target_id: int, now: datetime) -> None:
    if actor_id == target_id:
        raise GuildError(_l("You already lead this guild."))
    with unit_of_work() as session:
        live_guild(guild_id, lock=True)
        leader = require_role(actor_id, guild_id, ("leader",))
        target = _member_in(guild_id, target_id)
        leader.role = "officer"
        session.flush()  # one leader at a time: the partial unique index checks each row
        target.role = "leader"
        session.flush()
        record(actor_id, "guild.transfer_leadership", f"guild:{guild_id}", f"to user:{target_id}", now)


def may_kick(actor_role: str, target_role: str) -> bool:
    """The leader removes anyone but themselves; an officer removes plain members only."""
    return target_role != "leader" and (actor_role == "leader" or target_role == "member")


def kick(actor_id: int, guild_id: int, target_id: int, reason: str, now: datetime) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise GuildError(_l("Give a reason: it is kept in the audit log."), "reason")
    if len(reason) > MESSAGE_MAX:
        raise GuildError(_l("Keep the reason under 500 characters."), "reason")
    with unit_of_work() as session:
        live_guild(guild_id, lock=True)
        actor = require_role(actor_id, guild_id, MANAGERS)
        target = _member_in(guild_id, target_id)
        if target.role == "leader":
            raise GuildForbidden(_l("The guild leader cannot be kicked."))
        if target.user_id == actor_id:
            raise GuildError(_l("Use “Leave guild” to leave."))
        if not may_kick(actor.role, target.role):
            raise GuildForbidden(_l("Only the leader can remove an officer."))
        session.delete(target)
        record(actor_id, "guild.kick", f"user:{target_id}", f"guild:{guild_id}: {reason}", now)
        _announce_left(target_id, guild_id, now)
