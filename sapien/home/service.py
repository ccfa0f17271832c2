"""Read models for the dashboard, the nav bar and profiles, gathered from each area's service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g, has_app_context, url_for

from sapien.guilds import membership
from sapien.labeling.settlement import PendingRewards, pending_rewards
from sapien.leaderboards import reading
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry
from sapien.progression.levels import LevelProgress, level_progress
from sapien.progression.summary import profile_progress
from sapien.quality.reputation import reputation_of


@dataclass(frozen=True)
class MemberSummary:
    balances: dict[str, int]
    progress: LevelProgress
    recent: list[LedgerEntry]


def nav_summary(user_id: int) -> tuple[dict[str, int], LevelProgress]:
    """Balances and level for the nav bar; computed once per request, however many places ask."""
    cache = g.setdefault("nav_summary", {}) if has_app_context() else {}
    if user_id not in cache:
        balances = ledger.balances(user_id)
        cache[user_id] = (balances, level_progress(balances["xp"]))
    return cache[user_id]


def nav_pending(user_id: int) -> PendingRewards:
    """The member's rewards waiting for verification, for the nav; once per request, only where shown."""
    cache = g.setdefault("nav_pending", {}) if has_app_context() else {}
    if user_id not in cache:
        cache[user_id] = pending_rewards(user_id)
    return cache[user_id]


def member_summary(user_id: int, recent: int = 10) -> MemberSummary:
    balances, progress = nav_summary(user_id)
    return MemberSummary(balances=balances, progress=progress, recent=ledger.recent_entries(user_id, recent))


@dataclass(frozen=True)
class ProfilePage:
    summary: MemberSummary
    progression: object
    guild: dict | None
    rank: int | None
    reputation: int


def profile_page(user_id: int, viewer_id: int | None, now: datetime) -> ProfilePage:
    """Everything a public profile shows, gathered from each area's service."""

    guild_id = membership.guild_id_of(user_id)
    guild = None
    if guild_id is not None and (names := membership.guild_names([guild_id])):
        name, slug = names[guild_id]
        guild = {"name": name, "url": url_for("guilds.show", slug=slug)}
    return ProfilePage(
        summary=member_summary(user_id),
        progression=profile_progress(user_id, viewer_id, now),
        guild=guild,
        rank=reading.all_time_rank(user_id, now),
        reputation=reputation_of(user_id),
    )
