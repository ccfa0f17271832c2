"""Guild rankings read from the boards: the guild directory (strongest first) and the leader dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from sapien.accounts.models import User
from sapien.csv_export import csv_lines
from sapien.database import as_utc
from sapien.extensions import db
from sapien.guilds.membership import DIRECTORY_PAGE, MANAGERS, live_guild, require_role
from sapien.guilds.models import JOIN_POLICIES, Guild, GuildMembership
from sapien.leaderboards.reading import gold_counts, guild_totals
from sapien.ledger.models import Balance, LedgerEntry
from sapien.periods import period_window
from sapien.quality.reputation import reputation_of


@dataclass(frozen=True)
class GuildCard:
    guild: Guild
    members: int
    total_xp: int


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
    totals = guild_totals([guild.id for guild, _ in rows])
    cards = [GuildCard(guild, members, totals.get(guild.id, 0)) for guild, members in rows]
    cards.sort(key=lambda card: (-card.total_xp, -card.members, card.guild.id))
    pages = max(1, -(-len(cards) // DIRECTORY_PAGE))
    page = min(max(1, page), pages)
    return cards[(page - 1) * DIRECTORY_PAGE : page * DIRECTORY_PAGE], pages


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

    live_guild(guild_id)
    require_role(actor_id, guild_id, MANAGERS)
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
                reputation=int(reputation_of(user_id)),
            )
        )
    sort = filters.sort if filters.sort in DASHBOARD_SORTS else "xp"
    result.sort(key=_sort_key(sort), reverse=filters.descending)
    return result


CSV_HEADER = ("rank", "username", "display_name", "role", "joined_at", "xp", "xp_this_week", "gold_accuracy_percent", "gold_answers", "reputation")


def dashboard_csv(rows: list[DashboardRow]) -> Iterator[str]:
    """The dashboard as CSV, one line at a time (streamed to the browser; `sapien.csv_export`)."""
    return csv_lines(
        CSV_HEADER,
        (
            (
                rank,
                row.username,
                row.display_name,
                row.role,
                as_utc(row.joined_at).isoformat(),
                row.xp,
                row.week_xp,
                row.accuracy,
                row.gold_total,
                row.reputation,
            )
            for rank, row in enumerate(rows, start=1)
        ),
    )
