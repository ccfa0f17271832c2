"""A guild's page (members, pending requests for its managers) and a member's own guild state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from sapien.accounts.models import User
from sapien.extensions import db
from sapien.guilds.membership import MANAGERS, get_guild_by_slug, may_kick, membership_of
from sapien.guilds.models import Guild, GuildApplication, GuildInvitation, GuildMembership
from sapien.ledger.models import Balance


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

    def can_kick(self, member: MemberLine) -> bool:
        return self.can_manage and member.user_id != self.my_membership.user_id and may_kick(self.my_membership.role, member.role)

    def can_hand_over_to(self, member: MemberLine) -> bool:
        return self.is_leader and member.user_id != self.my_membership.user_id

    def member(self, user_id: int) -> MemberLine | None:
        return next((line for line in self.members if line.user_id == user_id), None)


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
    view = GuildView(guild, members, my_membership, my_application, my_invitation, [], [])
    if view.can_manage:
        view.applications = list(
            db.session.execute(
                select(GuildApplication, User)
                .join(User, User.id == GuildApplication.user_id)
                .where(GuildApplication.guild_id == guild.id, GuildApplication.status == "pending")
                .order_by(GuildApplication.created_at)
            )
        )
        view.invitations = list(
            db.session.execute(
                select(GuildInvitation, User)
                .join(User, User.id == GuildInvitation.user_id)
                .where(GuildInvitation.guild_id == guild.id, GuildInvitation.status == "pending")
                .order_by(GuildInvitation.created_at)
            )
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
        )
    )
    applications = list(
        db.session.execute(
            select(GuildApplication, Guild)
            .join(Guild, Guild.id == GuildApplication.guild_id)
            .where(GuildApplication.user_id == user_id, GuildApplication.status == "pending", Guild.disbanded_at.is_(None))
        )
    )
    return MyGuildState(membership, guild, invitations, applications)
