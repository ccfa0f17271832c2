"""Guild rules: creation, joining (open / by application / invite-only), roles, leadership, kicks.

One guild at a time (a unique membership per member in the database). Requirements to join: a minimum
level (from ledger XP) and, once the quality area provides `reputation_of`, a minimum reputation; an
invitation from the guild waives them (the leaders chose that member). Leaders and officers manage;
only the leader changes roles, hands over leadership or disbands (by leaving as the last member).
Every kick is written to the audit log with its reason.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.accounts.models import User
from sapien.database import after_commit, as_utc, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.guilds.models import JOIN_POLICIES, Guild, GuildApplication, GuildInvitation, GuildMembership
from sapien.ledger import service as ledger
from sapien.ledger.models import Balance, LedgerEntry
from sapien.progression.service import level_for_xp

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
    return dict(db.session.execute(select(GuildMembership.user_id, GuildMembership.guild_id)).tuples().all())


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

def _reputation_source():
    try:
        from sapien.quality.service import reputation_of
    except ImportError:
        return None
    return reputation_of


def member_level(user_id: int) -> int:
    return level_for_xp(ledger.balance(user_id, "xp"))


def check_requirements(user_id: int, guild: Guild) -> None:
    level = member_level(user_id)
    if level < guild.min_level:
        raise GuildError(
            _l("%(guild)s asks for level %(needed)s; you are level %(level)s.", guild=guild.name, needed=guild.min_level, level=level)
        )
    if guild.min_reputation > 0:
        reputation_of = _reputation_source()
        # Until the quality area lands there is no reputation to check: the gate is not enforced yet.
        if reputation_of is not None:
            reputation = reputation_of(user_id)
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


def _not_in_a_guild(user_id: int) -> None:
    if guild_id_of(user_id) is not None:
        raise GuildError(_l("You are already in a guild. Leave it before joining another."))


def _add_member(guild: Guild, user_id: int, role: str, now: datetime) -> GuildMembership:
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


# --- creating and joining ------------------------------------------------------------------------

def name_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().strip()


def _slug_for(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40] or "guild"
    slug, suffix = base, 2
    while db.session.scalar(select(Guild.id).where(Guild.slug == slug)):
        slug, suffix = f"{base}-{suffix}", suffix + 1
    return slug


@dataclass(frozen=True)
class GuildDraft:
    name: str
    description: str = ""
    join_policy: str = "open"
    min_level: int = 1
    min_reputation: int = 0


def _check_draft(draft: GuildDraft) -> str:
    name = " ".join(unicodedata.normalize("NFKC", draft.name).split())
    if not (NAME_MIN <= len(name) <= NAME_MAX):
        raise GuildError(_l("Guild names are 3 to 48 characters long."), "name")
    if draft.join_policy not in JOIN_POLICIES:
        raise GuildError(_l("Choose a join policy from the list."), "join_policy")
    if not (1 <= draft.min_level <= 100):
        raise GuildError(_l("The minimum level is between 1 and 100."), "min_level")
    if not (0 <= draft.min_reputation <= 1_000_000):
        raise GuildError(_l("The minimum reputation is between 0 and 1,000,000."), "min_reputation")
    if len(draft.description) > DESCRIPTION_MAX:
        raise GuildError(_l("Descriptions are at most 1000 characters long."), "description")
    return name


def _check_founder(user_id: int) -> None:
    """Founding a guild needs a minimum level, or (once the quality area provides it) a minimum reputation."""
    needed = int(current_app.config.get("GUILD_CREATE_MIN_LEVEL", 3))
    level = member_level(user_id)
    if level >= needed:
        return
    reputation_of = _reputation_source()
    needed_reputation = int(current_app.config.get("GUILD_CREATE_MIN_REPUTATION", 700))
    if reputation_of is not None and reputation_of(user_id) >= needed_reputation:
        return
    raise GuildError(_l("Founding a guild needs level %(needed)s; you are level %(level)s.", needed=needed, level=level))


def create_guild(user_id: int, draft: GuildDraft, now: datetime) -> Guild:
    """Found a guild; its founder becomes its leader."""
    name = _check_draft(draft)
    _check_founder(user_id)
    with unit_of_work() as session:
        _not_in_a_guild(user_id)
        if session.scalar(select(Guild.id).where(Guild.name_key == name_key(name))):
            raise GuildError(_l("A guild with that name already exists."), "name")
        guild = Guild(
            slug=_slug_for(name),
            name=name,
            name_key=name_key(name),
            description=draft.description.strip(),
            join_policy=draft.join_policy,
            min_level=draft.min_level,
            min_reputation=draft.min_reputation,
            created_by=user_id,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(guild)
                session.flush()
        except IntegrityError:
            raise GuildError(_l("A guild with that name already exists."), "name") from None
        _add_member(guild, user_id, "leader", now)
    return guild


def update_guild(actor_id: int, guild_id: int, draft: GuildDraft) -> Guild:
    name = _check_draft(draft)
    with unit_of_work() as session:
        guild = _live_guild(guild_id)
        _require_role(actor_id, guild.id, ("leader",))
        taken = session.scalar(select(Guild.id).where(Guild.name_key == name_key(name), Guild.id != guild.id))
        if taken:
            raise GuildError(_l("A guild with that name already exists."), "name")
        guild.name, guild.name_key = name, name_key(name)
        guild.description = draft.description.strip()
        guild.join_policy = draft.join_policy
        guild.min_level, guild.min_reputation = draft.min_level, draft.min_reputation
    return guild


def _live_guild(guild_id: int, lock: bool = False) -> Guild:
    query = select(Guild).where(Guild.id == guild_id, Guild.disbanded_at.is_(None))
    guild = db.session.scalar(query.with_for_update() if lock else query)
    if guild is None:
        raise GuildNotFound(_l("There is no such guild."))
    return guild


def join(user_id: int, guild_id: int, now: datetime) -> GuildMembership:
    """Join an open guild directly."""
    with unit_of_work():
        guild = _live_guild(guild_id, lock=True)
        if guild.join_policy != "open":
            raise GuildError(
                _l("%(guild)s takes applications: apply instead.", guild=guild.name)
                if guild.join_policy == "application"
                else _l("%(guild)s is invite-only.", guild=guild.name)
            )
        _not_in_a_guild(user_id)
        check_requirements(user_id, guild)
        _check_room(guild)
        return _add_member(guild, user_id, "member", now)


def apply(user_id: int, guild_id: int, message: str, now: datetime) -> GuildApplication:
    message = (message or "").strip()
    if len(message) > MESSAGE_MAX:
        raise GuildError(_l("Keep your message under 500 characters."), "message")
    with unit_of_work() as session:
        guild = _live_guild(guild_id)
        if guild.join_policy != "application":
            raise GuildError(_l("%(guild)s does not take applications.", guild=guild.name))
        _not_in_a_guild(user_id)
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
        guild = _live_guild(guild_id, lock=True)
        _require_role(actor_id, guild.id, MANAGERS)
        application = session.get(GuildApplication, application_id, with_for_update=True)
        if application is None or application.guild_id != guild.id:
            raise GuildNotFound(_l("There is no such application."))
        if application.status != "pending":
            raise GuildError(_l("That application was already answered."))
        if accept:
            if guild_id_of(application.user_id) is not None:
                raise GuildError(_l("That member has joined another guild meanwhile."))
            _check_room(guild)
            _add_member(guild, application.user_id, "member", now)
        application.status = "accepted" if accept else "declined"
        application.decided_at, application.decided_by = now, actor_id
    return application


def invite(actor_id: int, guild_id: int, username: str, now: datetime) -> GuildInvitation:
    from sapien.accounts.service import get_by_username

    with unit_of_work() as session:
        guild = _live_guild(guild_id)
        _require_role(actor_id, guild.id, MANAGERS)
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
            guild = _live_guild(invitation.guild_id, lock=True)
            _not_in_a_guild(user_id)
            _check_room(guild)
            _add_member(guild, user_id, "member", now)
        invitation.status = "accepted" if accept else "declined"
        invitation.decided_at = now
    return invitation


# --- leaving, roles, kicks -----------------------------------------------------------------------

def _require_role(actor_id: int, guild_id: int, roles: tuple[str, ...]) -> GuildMembership:
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
            guild = _live_guild(guild_id, lock=True)
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
        _live_guild(guild_id)
        _require_role(actor_id, guild_id, ("leader",))
        target = _member_in(guild_id, target_id)
        if target.role == "leader":
            raise GuildError(_l("Hand over the leadership instead."))
        target.role = role


def transfer_leadership(actor_id: int, guild_id: int, target_id: int, now: datetime) -> None:
    from sapien.moderation.service import record

    if actor_id == target_id:
        raise GuildError(_l("You already lead this guild."))
    with unit_of_work() as session:
        _live_guild(guild_id, lock=True)
        leader = _require_role(actor_id, guild_id, ("leader",))
        target = _member_in(guild_id, target_id)
        leader.role = "officer"
        session.flush()  # one leader at a time: the partial unique index checks each row
        target.role = "leader"
        session.flush()
        record(actor_id, "guild.transfer_leadership", f"guild:{guild_id}", f"to user:{target_id}", now)


def kick(actor_id: int, guild_id: int, target_id: int, reason: str, now: datetime) -> None:
    from sapien.moderation.service import record

    reason = (reason or "").strip()
    if not reason:
        raise GuildError(_l("Give a reason: it is kept in the audit log."), "reason")
    if len(reason) > MESSAGE_MAX:
        raise GuildError(_l("Keep the reason under 500 characters."), "reason")
    with unit_of_work() as session:
        _live_guild(guild_id, lock=True)
        actor = _require_role(actor_id, guild_id, MANAGERS)
        target = _member_in(guild_id, target_id)
        if target.role == "leader":
            raise GuildForbidden(_l("The guild leader cannot be kicked."))
        if target.user_id == actor_id:
            raise GuildError(_l("Use “Leave guild” to leave."))
        if actor.role == "officer" and target.role == "officer":
            raise GuildForbidden(_l("Only the leader can remove an officer."))
        session.delete(target)
        record(actor_id, "guild.kick", f"user:{target_id}", f"guild:{guild_id}: {reason}", now)
        _announce_left(target_id, guild_id, now)


# --- pages ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GuildCard:
    guild: Guild
    members: int
    total_xp: int


def _guild_totals(ids: list[int]) -> dict[int, int]:
    from redis import RedisError

    from sapien.leaderboards.service import member_of, prefix
    from sapien.queue import redis_connection

    if not ids:
        return {}
    try:
        scores = redis_connection().zmscore(f"{prefix()}:guilds:all", [member_of(gid) for gid in ids])
    except RedisError:
        return {}
    return {gid: int(score or 0) for gid, score in zip(ids, scores, strict=True)}


def directory(query: str = "", policy: str = "", page: int = 1) -> tuple[list[GuildCard], int]:
    """Guilds matching a name search and a join policy, strongest (total XP) first; (cards, pages)."""
    counts = (
        select(GuildMembership.guild_id, func.count().label("members")).group_by(GuildMembership.guild_id).subquery()
    )
    statement = (
        select(Guild, func.coalesce(counts.c.members, 0))
        .outerjoin(counts, counts.c.guild_id == Guild.id)
        .where(Guild.disbanded_at.is_(None))
    )
    query = (query or "").strip()[:48]
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Guild.name.ilike(f"%{escaped}%", escape="\\"))
    if policy in JOIN_POLICIES:
        statement = statement.where(Guild.join_policy == policy)
    rows = db.session.execute(statement.limit(1000)).all()
    totals = _guild_totals([guild.id for guild, _ in rows])
    cards = [GuildCard(guild, members, totals.get(guild.id, 0)) for guild, members in rows]
    cards.sort(key=lambda card: (-card.total_xp, -card.members, card.guild.id))
    pages = max(1, -(-len(cards) // DIRECTORY_PAGE))
    page = min(max(1, page), pages)
    return cards[(page - 1) * DIRECTORY_PAGE : page * DIRECTORY_PAGE], pages


@dataclass(frozen=True)
class MemberLine:
    user_id: int
    username: str
    display_name: str
    role: str
    xp: int


@dataclass
class GuildView:
    guild: Guild
    members: list[MemberLine]
    total_xp: int
    my_membership: GuildMembership | None
    my_application: GuildApplication | None
    my_invitation: GuildInvitation | None
    applications: list[tuple[GuildApplication, User]]
    invitations: list[tuple[GuildInvitation, User]]

    @property
    def can_manage(self) -> bool:
        return bool(self.my_membership and self.my_membership.guild_id == self.guild.id and self.my_membership.role in MANAGERS)

    @property
    def is_leader(self) -> bool:
        return bool(self.my_membership and self.my_membership.guild_id == self.guild.id and self.my_membership.role == "leader")

    @property
    def is_member(self) -> bool:
        return bool(self.my_membership and self.my_membership.guild_id == self.guild.id)


ROLE_ORDER = {"leader": 0, "officer": 1, "member": 2}


def guild_view(slug: str, viewer_id: int | None) -> GuildView:
    guild = get_guild_by_slug(slug)
    rows = db.session.execute(
        select(User.id, User.username, User.display_name, GuildMembership.role, func.coalesce(Balance.amount, 0))
        .join(GuildMembership, GuildMembership.user_id == User.id)
        .outerjoin(Balance, (Balance.user_id == User.id) & (Balance.currency == "xp"))
        .where(GuildMembership.guild_id == guild.id)
    ).all()
    members = sorted((MemberLine(*row) for row in rows), key=lambda m: (ROLE_ORDER[m.role], -m.xp, m.user_id))
    my_membership = membership_of(viewer_id) if viewer_id else None
    my_application = my_invitation = None
    if viewer_id:
        my_application = db.session.scalar(
            select(GuildApplication).where(
                GuildApplication.guild_id == guild.id, GuildApplication.user_id == viewer_id, GuildApplication.status == "pending"
            )
        )
        my_invitation = db.session.scalar(
            select(GuildInvitation).where(
                GuildInvitation.guild_id == guild.id, GuildInvitation.user_id == viewer_id, GuildInvitation.status == "pending"
            )
        )
    view = GuildView(guild, members, _guild_totals([guild.id]).get(guild.id, 0), my_membership, my_application, my_invitation, [], [])
    if view.can_manage:
        view.applications = list(
            db.session.execute(
                select(GuildApplication, User)
                .join(User, User.id == GuildApplication.user_id)
                .where(GuildApplication.guild_id == guild.id, GuildApplication.status == "pending")
                .order_by(GuildApplication.created_at)
            ).tuples()
        )
        view.invitations = list(
            db.session.execute(
                select(GuildInvitation, User)
                .join(User, User.id == GuildInvitation.user_id)
                .where(GuildInvitation.guild_id == guild.id, GuildInvitation.status == "pending")
                .order_by(GuildInvitation.created_at)
            ).tuples()
        )
    return view


@dataclass
class MyGuildState:
    membership: GuildMembership | None
    guild: Guild | None
    invitations: list[tuple[GuildInvitation, Guild]]
    applications: list[tuple[GuildApplication, Guild]]


def my_guild(user_id: int) -> MyGuildState:
    membership = membership_of(user_id)
    guild = db.session.get(Guild, membership.guild_id) if membership else None
    invitations = list(
        db.session.execute(
            select(GuildInvitation, Guild)
            .join(Guild, Guild.id == GuildInvitation.guild_id)
            .where(GuildInvitation.user_id == user_id, GuildInvitation.status == "pending", Guild.disbanded_at.is_(None))
        ).tuples()
    )
    applications = list(
        db.session.execute(
            select(GuildApplication, Guild)
            .join(Guild, Guild.id == GuildApplication.guild_id)
            .where(GuildApplication.user_id == user_id, GuildApplication.status == "pending", Guild.disbanded_at.is_(None))
        ).tuples()
    )
    return MyGuildState(membership, guild, invitations, applications)


# --- the leader dashboard ------------------------------------------------------------------------

DASHBOARD_SORTS = ("xp", "week_xp", "accuracy", "reputation", "name", "joined")
DASHBOARD_ROLES = ("", "leader", "officer", "member")


@dataclass(frozen=True)
class DashboardRow:
    user_id: int
    username: str
    display_name: str
    role: str
    joined_at: datetime
    xp: int
    week_xp: int
    accuracy: float | None  # percent
    gold_total: int
    reputation: int | None


@dataclass(frozen=True)
class DashboardFilter:
    sort: str = "xp"
    descending: bool = True
    role: str = ""
    query: str = ""
    active_only: bool = False


def _sort_key(sort: str):
    def key(row: DashboardRow):
        if sort == "name":
            return row.display_name.casefold()
        if sort == "joined":
            return as_utc(row.joined_at)
        value = getattr(row, sort)
        return (value is not None, value if value is not None else 0)

    return key


def dashboard(actor_id: int, guild_id: int, filters: DashboardFilter, now: datetime) -> list[DashboardRow]:
    """The guild's members with XP, XP this ISO week, gold accuracy and reputation; leaders and officers only."""
    from sapien.leaderboards.service import gold_counts, period_window

    _live_guild(guild_id)
    _require_role(actor_id, guild_id, MANAGERS)
    week_start, week_end = period_window("week", now)
    week = (
        select(LedgerEntry.user_id, func.sum(LedgerEntry.amount).label("week_xp"))
        .join(GuildMembership, GuildMembership.user_id == LedgerEntry.user_id)
        .where(
            GuildMembership.guild_id == guild_id,
            LedgerEntry.currency == "xp",
            LedgerEntry.created_at >= week_start,
            LedgerEntry.created_at < week_end,
        )
        .group_by(LedgerEntry.user_id)
        .subquery()
    )
    rows = db.session.execute(
        select(
            User.id,
            User.username,
            User.display_name,
            GuildMembership.role,
            GuildMembership.joined_at,
            func.coalesce(Balance.amount, 0),
            func.coalesce(week.c.week_xp, 0),
        )
        .join(GuildMembership, GuildMembership.user_id == User.id)
        .outerjoin(Balance, (Balance.user_id == User.id) & (Balance.currency == "xp"))
        .outerjoin(week, week.c.user_id == User.id)
        .where(GuildMembership.guild_id == guild_id)
    ).all()
    gold = gold_counts(row[0] for row in rows)
    reputation_of = _reputation_source()
    result = []
    query = filters.query.strip().casefold()
    for user_id, username, display_name, role, joined_at, xp, week_xp in rows:
        if filters.role and role != filters.role:
            continue
        if query and query not in display_name.casefold() and query not in username.casefold():
            continue
        if filters.active_only and week_xp <= 0:
            continue
        correct, total = gold.get(user_id, (0, 0))
        result.append(
            DashboardRow(
                user_id=user_id,
                username=username,
                display_name=display_name,
                role=role,
                joined_at=joined_at,
                xp=int(xp),
                week_xp=int(week_xp),
                accuracy=round(100 * correct / total, 1) if total else None,
                gold_total=total,
                reputation=int(reputation_of(user_id)) if reputation_of else None,
            )
        )
    sort = filters.sort if filters.sort in DASHBOARD_SORTS else "xp"
    result.sort(key=_sort_key(sort), reverse=filters.descending)
    return result


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: a cell that starts like a formula is kept as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


CSV_HEADER = ("rank", "username", "display_name", "role", "joined_at", "xp", "xp_this_week", "gold_accuracy_percent", "gold_answers", "reputation")


def dashboard_csv(rows: list[DashboardRow]) -> Iterator[str]:
    """The dashboard as CSV, one line at a time (streamed to the browser)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return value

    writer.writerow(CSV_HEADER)
    yield flush()
    for rank, row in enumerate(rows, start=1):
        writer.writerow(
            [
                rank,
                _csv_cell(row.username),
                _csv_cell(row.display_name),
                row.role,
                as_utc(row.joined_at).isoformat(),
                row.xp,
                row.week_xp,
                "" if row.accuracy is None else row.accuracy,
                row.gold_total,
                "" if row.reputation is None else row.reputation,
            ]
        )
        yield flush()
