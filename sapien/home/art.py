"""Artwork drawn by our code as SVG: level emblems and guild crests (badge medals live with the badge
catalogue in `sapien.progression.badges`). Everything here is made here and ships under the project's
own licence; nothing is fetched or copied from elsewhere.

Both are pure functions of their input, so the same level or guild always gets the same picture and a
new guild gets its crest without anyone drawing it.
"""

from __future__ import annotations

import hashlib
import math
from html import escape

# (light, mid, dark) per emblem band: the band changes every few levels, so progress shows in the colour.
EMBLEM_BANDS = (
    (1, "bronze", ("#f0b98a", "#b06a34", "#5e3416")),
    (5, "silver", ("#f4f7fb", "#a9b3c1", "#4b5563")),
    (10, "gold", ("#ffe48a", "#e0a412", "#7a4f00")),
    (25, "emerald", ("#a7f3d0", "#10b981", "#064e3b")),
    (50, "amethyst", ("#e9d5ff", "#a855f7", "#4c1d95")),
    (100, "legend", ("#fecaca", "#ef4444", "#450a0a")),
)


def emblem_band(level: int) -> str:
    return next(name for floor, name, _colours in reversed(EMBLEM_BANDS) if level >= floor)


def _star_points(cx: float, cy: float, outer: float, inner: float, points: int, turn: float = -math.pi / 2) -> str:
    coords = []
    for i in range(points * 2):
        radius = outer if i % 2 == 0 else inner
        angle = turn + math.pi * i / points
        coords.append(f"{cx + radius * math.cos(angle):.1f},{cy + radius * math.sin(angle):.1f}")
    return " ".join(coords)


def level_emblem_svg(level: int, title: str) -> str:
    """A 128x128 emblem for `level`: a faceted gem in the band's colours, wings from level 10, a crown
    from level 25, pips for the steps inside a band, and the level number."""
    level = max(1, level)
    band = emblem_band(level)
    light, mid, dark = next(colours for floor, name, colours in EMBLEM_BANDS if name == band)
    gid = f"em-{band}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 128 128" width="128" height="128" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<defs><linearGradient id="{gid}" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="{light}"/>'
        f'<stop offset="1" stop-color="{mid}"/></linearGradient></defs>',
    ]
    if level >= 10:  # wings
        parts.append(
            f'<g fill="{mid}" stroke="{dark}" stroke-width="2" opacity="0.9">'
            '<path d="M28 58 L4 44 L10 62 L2 70 L16 76 L10 86 L32 82 Z"/>'
            '<path d="M100 58 L124 44 L118 62 L126 70 L112 76 L118 86 L96 82 Z"/></g>'
        )
    if level >= 25:  # crown
        parts.append(f'<path d="M44 22 L50 6 L58 18 L64 2 L70 18 L78 6 L84 22 Z" fill="{light}" stroke="{dark}" stroke-width="2.5" stroke-linejoin="round"/>')
    # the gem: a hexagon with facets
    parts.append(
        f'<polygon points="64,14 106,38 106,90 64,114 22,90 22,38" fill="url(#{gid})" stroke="{dark}" stroke-width="4" stroke-linejoin="round"/>'
        f'<polygon points="64,26 95,44 95,84 64,102 33,84 33,44" fill="{dark}" opacity="0.22"/>'
        f'<path d="M22 38 L64 52 L106 38 M64 52 V114" stroke="#ffffff" stroke-width="2" opacity="0.35" fill="none"/>'
        f'<polygon points="{_star_points(64, 64, 30, 24, 8)}" fill="{dark}" opacity="0.85"/>'
    )
    size = 30 if level < 10 else 26 if level < 100 else 21
    parts.append(
        f'<text x="64" y="65" text-anchor="middle" dominant-baseline="central" font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" '
        f'font-size="{size}" font-weight="800" fill="#ffffff">{level}</text>'
    )
    floor = next(floor for floor, name, _colours in EMBLEM_BANDS if name == band)
    pips = min(5, level - floor)
    for i in range(pips):
        x = 64 + (i - (pips - 1) / 2) * 10
        parts.append(f'<circle cx="{x:.0f}" cy="104" r="3" fill="#ffffff" stroke="{dark}" stroke-width="1"/>')
    parts.append("</svg>")
    return "".join(parts)


# Heraldic tinctures that read well on light and dark pages, and charges as 24x24 paths.
CREST_PALETTES = (
    ("#4b4bc8", "#f2c14e"), ("#0b7f73", "#f4f1e8"), ("#b42318", "#f2c14e"), ("#1f2937", "#e5e7eb"),
    ("#6d3fc2", "#a7f3d0"), ("#0369a1", "#fde68a"), ("#9a3412", "#fed7aa"), ("#166534", "#fef3c7"),
)
CREST_CHARGES = {
    "star": "M12 2l3 6.5 7 .8-5.2 4.8 1.5 7L12 17.6 5.7 21l1.5-7L2 9.3l7-.8z",
    "moon": "M15 2a10 10 0 1 0 7 17A8 8 0 0 1 15 2z",
    "bolt": "M13 2L4 14h6l-2 8 9-12h-6z",
    "leaf": "M20 3C9 3 4 9 4 16c0 2 1 4 1 4l2-2c4-1 12-4 13-15zM6 20c3-6 7-9 11-11",
    "key": "M8 14a5 5 0 1 1 4.6-3H22v3h-2v3h-3v-3h-4.4A5 5 0 0 1 8 14zm0-3a2 2 0 1 0 0-4 2 2 0 0 0 0 4z",
    "crown": "M3 18L2 7l5 4 5-7 5 7 5-4-1 11z",
    "tower": "M6 22V8H4V3h3v2h2V3h2v2h2V3h2v2h2V3h3v5h-2v14h-5v-5a2 2 0 0 0-4 0v5z",
    "eye": "M12 5C6 5 2 12 2 12s4 7 10 7 10-7 10-7-4-7-10-7zm0 11a4 4 0 1 1 0-8 4 4 0 0 1 0 8z",
}
CREST_DIVISIONS = ("plain", "pale", "fess", "bend", "quarterly", "chevron")
SHIELD = "M64 8 L112 20 V62 C112 92 92 112 64 122 C36 112 16 92 16 62 V20 Z"


def crest_design(seed: str) -> tuple[tuple[str, str], str, str]:
    """(palette, division, charge) chosen from a hash of `seed` (the guild's slug): stable forever."""
    digest = hashlib.sha256(seed.encode()).digest()
    palette = CREST_PALETTES[digest[0] % len(CREST_PALETTES)]
    division = CREST_DIVISIONS[digest[1] % len(CREST_DIVISIONS)]
    charge = sorted(CREST_CHARGES)[digest[2] % len(CREST_CHARGES)]
    return palette, division, charge


def guild_crest_svg(seed: str, title: str) -> str:
    """A 128x128 heraldic shield for a guild, deterministic from `seed`."""
    (field, metal), division, charge = crest_design(seed)
    cid = "crest-clip"
    shapes = {
        "plain": "",
        "pale": '<rect x="64" y="0" width="64" height="128"/>',
        "fess": '<rect x="0" y="64" width="128" height="64"/>',
        "bend": '<polygon points="0,0 40,0 128,88 128,128 88,128 0,40"/>',
        "quarterly": '<rect x="64" y="0" width="64" height="64"/><rect x="0" y="64" width="64" height="64"/>',
        "chevron": '<polygon points="0,110 64,50 128,110 128,128 0,128"/>',
    }
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 128 128" width="128" height="128" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<defs><clipPath id="{cid}"><path d="{SHIELD}"/></clipPath></defs>'
        f'<path d="{SHIELD}" fill="{field}"/>'
        f'<g clip-path="url(#{cid})" fill="{metal}" opacity="0.9">{shapes[division]}</g>'
        f'<circle cx="64" cy="60" r="27" fill="{field}" stroke="{metal}" stroke-width="4"/>'
        f'<g transform="translate(44 40) scale(1.67)" fill="{metal}"><path d="{CREST_CHARGES[charge]}"/></g>'
        f'<path d="{SHIELD}" fill="none" stroke="#1b1d2a" stroke-opacity="0.55" stroke-width="5" stroke-linejoin="round"/>'
        f'<path d="M64 14 L106 25 V40 C80 30 48 30 22 40 V25 Z" fill="#ffffff" opacity="0.14"/>'
        "</svg>"
    )
