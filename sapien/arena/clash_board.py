"""The guild clash board: guilds ranked by clash wins, then clash points, read from the finished clashes.

Only counted clashes are on it: finished and rated (a clash flagged for fair play counts once a moderator
clears it, never if the flag is upheld). A draw counts as a draw for both guilds. The database is the truth;
the board is one grouped query over the clashes (two indexed rows per clash).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, literal, select, union_all

from sapien.arena.models import ArenaClash, ArenaMatch
from sapien.extensions import db
from sapien.guilds.models import Guild


@dataclass(frozen=True)
class GuildRecord:
    guild_id: int
    name: str
    slug: str
    clashes: int
    wins: int
    draws: int
    losses: int
    points: int  # the guild's summed team scores over its clashes


def _records():
    """One row per guild and counted clash (finished, and rated: a flagged clash counts once cleared)."""
    counted = (ArenaClash.status == "finished") & ArenaMatch.rated.is_(True)
    sides = []
    for mine, theirs, points in (
        (ArenaClash.challenger_guild_id, ArenaClash.opponent_guild_id, ArenaClash.challenger_points),
        (ArenaClash.opponent_guild_id, ArenaClash.challenger_guild_id, ArenaClash.opponent_points),
    ):
        sides.append(
            select(
                mine.label("guild_id"),
                points.label("points"),
                case((ArenaClash.winner_guild_id == mine, 1), else_=0).label("won"),
                case((ArenaClash.winner_guild_id == theirs, 1), else_=0).label("lost"),
                case((ArenaClash.winner_guild_id.is_(None), 1), else_=0).label("drawn"),
                literal(1).label("one"),
            )
            .join(ArenaMatch, ArenaMatch.id == ArenaClash.match_id)
            .where(counted)
        )
    return union_all(*sides).subquery()


def _standings(guild_id: int | None = None, limit: int = 50) -> list[GuildRecord]:
    rows = _records()
    query = (
        select(
            Guild.id,
            Guild.name,
            Guild.slug,
            func.sum(rows.c.one),
            func.sum(rows.c.won),
            func.sum(rows.c.drawn),
            func.sum(rows.c.lost),
            func.sum(rows.c.points),
        )
        .join(rows, rows.c.guild_id == Guild.id)
        .where(Guild.disbanded_at.is_(None))
        .group_by(Guild.id, Guild.name, Guild.slug)
    )
    if guild_id is not None:
        query = query.where(Guild.id == guild_id)
    # Most wins first; then the most points; then the older guild.
    query = query.order_by(func.sum(rows.c.won).desc(), func.sum(rows.c.points).desc(), Guild.id).limit(limit)
    return [
        GuildRecord(gid, name, slug, int(total), int(won), int(drawn), int(lost), int(points or 0))
        for gid, name, slug, total, won, drawn, lost, points in db.session.execute(query)
    ]


def guild_board(limit: int = 50) -> list[GuildRecord]:
    """The guild clash board: guilds by clash wins, then clash points."""
    return _standings(limit=limit)


def guild_record(guild_id: int) -> GuildRecord | None:
    """One guild's clash record for its page; None before its first counted clash."""
    found = _standings(guild_id, limit=1)
    return found[0] if found else None
