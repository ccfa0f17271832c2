"""Read models for the dashboard, the nav bar and profiles, gathered from each area's service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g, has_app_context, url_for
from flask_babel import gettext

from sapien.guilds import membership
from sapien.i18n import entry_kind_label
from sapien.labeling.settlement import PendingRewards, pending_rewards
from sapien.leaderboards import reading
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry
from sapien.progression.levels import LevelProgress, level_progress
from sapien.progression.summary import profile_progress
from sapien.quality.reputation import reputation_of


@dataclass(frozen=True)
class FeedAmount:
    currency: str
    amount: int


@dataclass(frozen=True)
class FeedLine:
    """One line of a member's activity: one reward (or charge) with every currency it moved.

    A reward is posted as one ledger entry per currency (points, XP, partner tokens) with the same kind,
    memo and instant; the line puts them back together: "Audio transcription · +22 points · +10 XP".
    """

    kind: str
    memo: str
    created_at: datetime
    amounts: tuple[FeedAmount, ...]

    @property
    def label(self) -> str:
        return entry_kind_label(self.kind)


# The order a line lists its currencies in, whatever order the entries were posted in.
CURRENCY_ORDER = {"points": 0, "xp": 1, "token": 2, "partner": 3, "stake": 4}


def feed_lines(entries: list[LedgerEntry]) -> list[FeedLine]:
    """Group newest-first ledger entries into one line per reward: consecutive entries of the same kind,
    memo and instant are one posting (the memo names the submission or quest, so two rewards made in
    the same instant still stay apart)."""
    groups: list[list[LedgerEntry]] = []
    for entry in entries:
        last = groups[-1][0] if groups else None
        if last is not None and (last.kind, last.memo, last.created_at) == (entry.kind, entry.memo, entry.created_at) \
                and all(e.currency != entry.currency for e in groups[-1]):
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return [
        FeedLine(
            kind=group[0].kind,
            memo=_memo(group[0]),
            created_at=group[0].created_at,
            amounts=tuple(FeedAmount(e.currency, e.amount) for e in sorted(group, key=lambda e: CURRENCY_ORDER.get(e.currency, 9))),
        )
        for group in groups
    ]


def _memo(entry: LedgerEntry) -> str:
    # A catalogue quest's title is stored in English (its msgid): shown in the member's language.
    return gettext(entry.memo) if entry.kind == "quest_reward" and entry.memo else entry.memo


@dataclass(frozen=True)
class MemberSummary:
    balances: dict[str, int]
    progress: LevelProgress
    recent: list[FeedLine]


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


def remember_nav_pending(user_id: int, pending: PendingRewards) -> None:
    """The nav's pending rewards as a page already read them (the work page, with the member's next item, in
    the answer's transaction): the nav shows these rather than read them again."""
    g.setdefault("nav_pending", {})[user_id] = pending


def member_summary(user_id: int, recent: int = 10) -> MemberSummary:
    """Balances, level and the latest `recent` activity lines (a reward posts up to three entries)."""
    balances, progress = nav_summary(user_id)
    lines = feed_lines(ledger.recent_entries(user_id, 3 * recent + 2))
    return MemberSummary(balances=balances, progress=progress, recent=lines[:recent])


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
