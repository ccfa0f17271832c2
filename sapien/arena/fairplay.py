"""Fair play: which finished matches a moderator looks at before they count, and the moderator's call.

A flagged match stays unrated and unpaid until a moderator clears it (then it is rated and paid as if it
had just finished) or upholds the flag (it never counts). Reasons: the two members look like one person
(`suspected_pair`: a shared IP network, device or wallet in trust & safety's signals), the same two members met again and again, or
answers came faster than anyone can read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from sapien.arena.errors import ArenaError
from sapien.arena.models import ArenaMatch, ArenaPlayer
from sapien.extensions import db
from sapien.moderation import verdicts

REPEAT_WINDOW = timedelta(hours=24)
REPEAT_LIMIT = 3  # this many matches of one pair within the window (this one included) is a flag
MIN_MS_PER_ITEM = 1500  # a whole run faster than this per item is not reading (config ARENA_MIN_MS_PER_ITEM)

REASONS = {
    "shared_identity": _l("Two of the players share an IP address or a device"),
    "repeat_pairing": _l("The same two members were paired again and again"),
    "impossible_speed": _l("Answers came faster than anyone can read"),
}


def suspected_pair(a: int, b: int, now: datetime) -> str | None:
    """Why members `a` and `b` look like one person (a shared IP network, device or wallet, as trust & safety
    records them), or None."""
    for cluster in verdicts.clusters_from_edges(verdicts.signal_edges([a, b])):
        if a in cluster.member_ids and b in cluster.member_ids:
            return _l("They share %(what)s.", what=", ".join(sorted(cluster.shared)))
    return None


def any_suspected_pair(user_ids: list[int]) -> bool:
    """Whether any two of these members look like one person: in a guild clash, one person holding places
    on both sides, or two places on one (one read of their signals for every pair)."""
    players = set(user_ids)
    return any(len(players & set(cluster.member_ids)) >= 2 for cluster in verdicts.clusters_from_edges(verdicts.signal_edges(players)))


def _pair_count(a: int, b: int, now: datetime) -> int:
    mine = select(ArenaPlayer.match_id).where(ArenaPlayer.user_id == a, ArenaPlayer.is_ghost.is_(False))
    return db.session.scalar(
        select(func.count()).select_from(ArenaPlayer).join(ArenaMatch, ArenaMatch.id == ArenaPlayer.match_id)
        .where(ArenaPlayer.user_id == b, ArenaPlayer.is_ghost.is_(False), ArenaPlayer.match_id.in_(mine),
               ArenaMatch.started_at >= now - REPEAT_WINDOW)
    ) or 0


def flags_for(match: ArenaMatch, seats: list[ArenaPlayer], now: datetime) -> list[str]:
    humans = [seat for seat in seats if not seat.is_ghost]
    reasons = []
    if len(humans) == 2:
        a, b = humans[0].user_id, humans[1].user_id
        if suspected_pair(a, b, now):
            reasons.append("shared_identity")
        if _pair_count(a, b, now) >= REPEAT_LIMIT:  # guilds meeting again is the point of a clash: duels only
            reasons.append("repeat_pairing")
    elif len(humans) > 2 and any_suspected_pair([seat.user_id for seat in humans]):
        reasons.append("shared_identity")
    items = len(match.item_ids) or 1
    floor = int(current_app.config.get("ARENA_MIN_MS_PER_ITEM", MIN_MS_PER_ITEM))
    for seat in humans:
        if seat.answered == items and seat.time_ms is not None and seat.time_ms < floor * items:
            reasons.append("impossible_speed")
            break
    return reasons


def open_flags(limit: int = 100) -> list[ArenaMatch]:
    return list(db.session.scalars(select(ArenaMatch).where(ArenaMatch.flag_state == "open").order_by(ArenaMatch.finished_at).limit(limit)))


def decide(match_id: int, *, clear: bool, moderator_id: int) -> bool:
    """Move an open flag to cleared or upheld; False when it was not open (decided already). In the
    caller's transaction: clearing settles the match there (see `matches.clear_flag`)."""
    moved = db.session.execute(
        update(ArenaMatch).where(ArenaMatch.id == match_id, ArenaMatch.flag_state == "open")
        .values(flag_state="cleared" if clear else "upheld", flag_decided_by=moderator_id, rated=clear).returning(ArenaMatch.id)
    ).scalar()
    if moved is None and db.session.get(ArenaMatch, match_id) is None:
        raise ArenaError(_l("There is no such match."))
    return moved is not None
