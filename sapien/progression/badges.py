"""The badge catalogue: declared here in code, one entry per badge, and the SVG artwork we draw.

A badge has a slug (stable, used in URLs, awards and on-chain metadata), a name and description
(translated), a tier (bronze, silver, gold), an icon, and a `rule`: a predicate over the member's
progression counters. A badge whose rule is None is only ever awarded by a moderator, by hand.
Rules are checked whenever an event moves the counters; an award is never made twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class BadgeStats:
    level: int
    labels_accepted: int
    gold_answered: int
    gold_correct: int
    reviews_completed: int
    quests_completed: int
    guilds_joined: int
    longest_streak: int
    arena_matches: int = 0
    arena_wins: int = 0

    @property
    def gold_accuracy(self) -> float:
        return self.gold_correct / self.gold_answered if self.gold_answered else 0.0


@dataclass(frozen=True)
class Badge:
    slug: str
    name: object
    description: object
    tier: str
    icon: str
    rule: Callable[[BadgeStats], bool] | None = None

    @property
    def manual_only(self) -> bool:
        return self.rule is None


CATALOGUE: tuple[Badge, ...] = (
    Badge("first-label", _l("First label"), _l("Had a first submission accepted."), "bronze", "tag",
          lambda s: s.labels_accepted >= 1),
    Badge("centurion", _l("Centurion"), _l("Had 100 submissions accepted."), "silver", "tag",
          lambda s: s.labels_accepted >= 100),
    Badge("thousand-hands", _l("Thousand hands"), _l("Had 1,000 submissions accepted."), "gold", "tag",
          lambda s: s.labels_accepted >= 1000),
    Badge("warming-up", _l("Warming up"), _l("Kept a streak of 3 days."), "bronze", "flame",
          lambda s: s.longest_streak >= 3),
    Badge("on-fire", _l("On fire"), _l("Kept a streak of 7 days."), "silver", "flame",
          lambda s: s.longest_streak >= 7),
    Badge("unstoppable", _l("Unstoppable"), _l("Kept a streak of 30 days."), "gold", "flame",
          lambda s: s.longest_streak >= 30),
    Badge("apprentice", _l("Apprentice"), _l("Reached level 5."), "bronze", "star", lambda s: s.level >= 5),
    Badge("adept", _l("Adept"), _l("Reached level 10."), "silver", "star", lambda s: s.level >= 10),
    Badge("master", _l("Master"), _l("Reached level 25."), "gold", "star", lambda s: s.level >= 25),
    Badge("sharp-eye", _l("Sharp eye"), _l("Answered 50 gold items with at least 90% accuracy."), "silver", "eye",
          lambda s: s.gold_answered >= 50 and s.gold_accuracy >= 0.9),
    Badge("second-opinion", _l("Second opinion"), _l("Completed 10 reviews."), "bronze", "check",
          lambda s: s.reviews_completed >= 10),
    Badge("guardian", _l("Guardian"), _l("Completed 250 reviews."), "gold", "check",
          lambda s: s.reviews_completed >= 250),
    Badge("guildmate", _l("Guildmate"), _l("Joined a guild."), "bronze", "shield", lambda s: s.guilds_joined >= 1),
    Badge("quester", _l("Quester"), _l("Completed a first quest."), "bronze", "flag", lambda s: s.quests_completed >= 1),
    Badge("quest-master", _l("Quest master"), _l("Completed 25 quests."), "silver", "flag",
          lambda s: s.quests_completed >= 25),
    # Arena rank tiers: awarded when a member first reaches the tier in a season (the arena's tier event).
    Badge("arena-silver", _l("Arena silver"), _l("Reached the silver tier in the arena."), "silver", "bolt"),
    Badge("arena-gold", _l("Arena gold"), _l("Reached the gold tier in the arena."), "gold", "bolt"),
    Badge("arena-diamond", _l("Arena diamond"), _l("Reached the diamond tier in the arena."), "gold", "star"),
    Badge("arena-victor", _l("Arena victor"), _l("Won a first rated arena match."), "bronze", "bolt", lambda s: s.arena_wins >= 1),
    Badge("arena-veteran", _l("Arena veteran"), _l("Played 50 rated arena matches."), "silver", "bolt", lambda s: s.arena_matches >= 50),
    Badge("founding-member", _l("Founding member"), _l("Was there in the first season."), "silver", "heart"),
    Badge("community-hero", _l("Community hero"), _l("Went far beyond the call for the community."), "gold", "heart"),
)
BADGES: dict[str, Badge] = {badge.slug: badge for badge in CATALOGUE}


def get_badge(slug: str) -> Badge | None:
    return BADGES.get(slug)


def earned_by_rules(stats: BadgeStats) -> list[str]:
    return [badge.slug for badge in CATALOGUE if badge.rule is not None and badge.rule(stats)]


# --- artwork ------------------------------------------------------------------------------------

TIER_COLOURS = {
    "bronze": ("#e3a46f", "#9a5a2c", "#6b3b19"),
    "silver": ("#f1f4f8", "#a9b3c1", "#5d6878"),
    "gold": ("#ffe48a", "#e0a412", "#8a5a00"),
}
# 24x24 icon paths, drawn in white on the medal.
ICONS = {
    "tag": "M3 12V4h8l10 10-8 8L3 12zm4-5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z",
    "flame": "M12 2c1 4 5 6 5 11a5 5 0 0 1-10 0c0-2 1-4 2-5 0 2 1 3 2 3 0-3-1-5 1-9z",
    "star": "M12 2l3 6.5 7 .8-5.2 4.8 1.5 7L12 17.6 5.7 21l1.5-7L2 9.3l7-.8z",
    "eye": "M12 5C6 5 2 12 2 12s4 7 10 7 10-7 10-7-4-7-10-7zm0 11a4 4 0 1 1 0-8 4 4 0 0 1 0 8z",
    "check": "M9 16.2l-4.2-4.2L3.4 13.4 9 19 21 7l-1.4-1.4z",
    "shield": "M12 2l8 3v6c0 5-3.4 9.3-8 11-4.6-1.7-8-6-8-11V5z",
    "flag": "M5 21V3h2v1h12l-2 4 2 4H7v9z",
    "bolt": "M13 2L4 14h6l-1 8 9-12h-6z",
    "heart": "M12 21s-8-5.3-8-11a4.5 4.5 0 0 1 8-2.8A4.5 4.5 0 0 1 20 10c0 5.7-8 11-8 11z",
}


def _outline(tier: str) -> str:
    """Bronze is round, silver is a hexagon, gold is a twelve-pointed seal: tier shows in the shape."""
    if tier == "bronze":
        return '<circle cx="64" cy="64" r="56"/>'
    if tier == "silver":
        return '<polygon points="64,6 114,35 114,93 64,122 14,93 14,35"/>'

    points = []
    for i in range(24):
        radius = 60 if i % 2 == 0 else 50
        angle = math.pi * i / 12 - math.pi / 2
        points.append(f"{64 + radius * math.cos(angle):.1f},{64 + radius * math.sin(angle):.1f}")
    return f'<polygon points="{" ".join(points)}"/>'


def badge_svg(badge: Badge, tier: str | None = None) -> str:
    """A self-contained 128x128 SVG medal for `badge` (optionally drawn in another tier)."""
    tier = tier or badge.tier
    light, mid, dark = TIER_COLOURS[tier]
    icon = ICONS.get(badge.icon, ICONS["star"])
    gradient_id = f"g-{badge.slug}-{tier}"
    title = escape(str(badge.name))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 128 128" width="128" height="128" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<defs><linearGradient id="{gradient_id}" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="{light}"/><stop offset="1" stop-color="{mid}"/></linearGradient></defs>'
        f'<g fill="url(#{gradient_id})" stroke="{dark}" stroke-width="4">{_outline(tier)}</g>'
        f'<circle cx="64" cy="64" r="34" fill="{dark}" opacity="0.85"/>'
        f'<g transform="translate(40 40) scale(2)" fill="#ffffff"><path d="{icon}"/></g>'
        "</svg>"
    )
