"""Founding a guild and changing its settings (name, description, join policy, requirements)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.guilds.membership import (
    DESCRIPTION_MAX,
    NAME_MAX,
    NAME_MIN,
    GuildError,
    add_member,
    check_not_in_a_guild,
    live_guild,
    member_level,
    member_reputation,
    require_role,
)
from sapien.guilds.models import JOIN_POLICIES, Guild


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
    """Founding a guild needs a minimum level or a minimum reputation."""
    needed = int(current_app.config.get("GUILD_CREATE_MIN_LEVEL", 3))
    level = member_level(user_id)
    if level >= needed:
        return
    needed_reputation = int(current_app.config.get("GUILD_CREATE_MIN_REPUTATION", 700))
    if member_reputation(user_id) >= needed_reputation:
        return
    raise GuildError(_l("Founding a guild needs level %(needed)s; you are level %(level)s.", needed=needed, level=level))


def create_guild(user_id: int, draft: GuildDraft, now: datetime) -> Guild:
    """Found a guild; its founder becomes its leader."""
    name = _check_draft(draft)
    _check_founder(user_id)
    with unit_of_work() as session:
        check_not_in_a_guild(user_id)
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
        add_member(guild, user_id, "leader", now)
    return guild


def update_guild(actor_id: int, guild_id: int, draft: GuildDraft) -> Guild:
    name = _check_draft(draft)
    with unit_of_work() as session:
        guild = live_guild(guild_id)
        require_role(actor_id, guild.id, ("leader",))
        taken = session.scalar(select(Guild.id).where(Guild.name_key == name_key(name), Guild.id != guild.id))
        if taken:
            raise GuildError(_l("A guild with that name already exists."), "name")
        guild.name, guild.name_key = name, name_key(name)
        guild.description = draft.description.strip()
        guild.join_policy = draft.join_policy
        guild.min_level, guild.min_reputation = draft.min_level, draft.min_reputation
    return guild
