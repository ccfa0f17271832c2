"""Client organizations and their members. An organization sees its own campaigns and nothing else."""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sapien.accounts.models import User
from sapien.api.errors import ApiError, NotFound
from sapien.api.models import ORG_ROLES, Organization, OrganizationMember
from sapien.database import unit_of_work
from sapien.extensions import db

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def create_organization(name: str, slug: str, *, now: datetime) -> Organization:
    name = (name or "").strip()
    slug = (slug or "").strip().lower()
    if not 2 <= len(name) <= 120:
        raise ApiError(_l("Organization names are 2 to 120 characters long."), field="name")
    if not SLUG.match(slug):
        raise ApiError(_l("Slugs use lowercase letters, digits and dashes (1 to 64 characters)."), field="slug")
    try:
        with unit_of_work() as session:
            organization = Organization(name=name, slug=slug, created_at=now)
            session.add(organization)
            session.flush()
    except IntegrityError:
        raise ApiError(_l("Another organization already uses the slug “%(slug)s”.", slug=slug), field="slug") from None
    return organization


def add_member(organization_id: int, username: str, *, role: str = "member", now: datetime) -> OrganizationMember:
    if role not in ORG_ROLES:
        raise ApiError(_l("Choose owner or member."), field="role")
    with unit_of_work() as session:
        if session.get(Organization, organization_id) is None:
            raise NotFound(_l("There is no such organization."))
        user = session.scalar(select(User).where(User.username == (username or "").strip()))
        if user is None:
            raise ApiError(_l("There is no member called “%(name)s”.", name=username), field="username")
        member = session.scalar(
            select(OrganizationMember).where(OrganizationMember.organization_id == organization_id, OrganizationMember.user_id == user.id)
        )
        if member is None:
            member = OrganizationMember(organization_id=organization_id, user_id=user.id, role=role, created_at=now)
            session.add(member)
        else:
            member.role = role
        session.flush()
    return member


def members_of(organization_id: int) -> list[tuple[OrganizationMember, User]]:
    return list(
        db.session.execute(
            select(OrganizationMember, User).join(User, User.id == OrganizationMember.user_id)
            .where(OrganizationMember.organization_id == organization_id).order_by(OrganizationMember.role.desc(), User.username)
        )
    )


def require_owner(user_id: int, organization_id: int) -> None:
    member = membership(user_id, organization_id)
    if member is None or member.role != "owner":
        raise ApiError(_l("Only the organization's owners manage its members."))


def remove_member(organization_id: int, user_id: int) -> None:
    """Take a member out of the organization; the last owner stays (someone must be able to manage it)."""
    with unit_of_work() as session:
        member = session.scalar(
            select(OrganizationMember).where(OrganizationMember.organization_id == organization_id, OrganizationMember.user_id == user_id)
            .with_for_update()
        )
        if member is None:
            raise NotFound(_l("That member is not in the organization."))
        if member.role == "owner":
            owners = session.scalars(
                select(OrganizationMember.id).where(OrganizationMember.organization_id == organization_id, OrganizationMember.role == "owner")
                .with_for_update()
            ).all()
            if len(owners) == 1:
                raise ApiError(_l("An organization keeps at least one owner: make someone else an owner first."))
        session.delete(member)


def organizations_of(user_id: int) -> list[Organization]:
    return list(
        db.session.scalars(
            select(Organization).join(OrganizationMember, OrganizationMember.organization_id == Organization.id)
            .where(OrganizationMember.user_id == user_id).order_by(Organization.name)
        )
    )


def membership(user_id: int, organization_id: int) -> OrganizationMember | None:
    return db.session.scalar(
        select(OrganizationMember).where(OrganizationMember.organization_id == organization_id, OrganizationMember.user_id == user_id)
    )


def get_organization(organization_id: int) -> Organization | None:
    return db.session.get(Organization, organization_id)


def is_org_member(user_id: int) -> bool:
    return db.session.scalar(select(OrganizationMember.id).where(OrganizationMember.user_id == user_id).limit(1)) is not None


def organization_by_slug(slug: str) -> Organization | None:
    return db.session.scalar(select(Organization).where(Organization.slug == slug))
