"""Weekly leagues on top of the weekly XP board, with no state of their own.

A member's league for an ISO week is set by where they finished *last* week on the global weekly XP
board: the top 5% play in Diamond, the next 15% in Gold, the next 30% in Silver, everyone else (and
newcomers) in Bronze. Inside a league, members are ranked by this week's XP. Because next week's league
follows from this week's global rank by the same rule, each row's zone is exact: the *promotion zone*
are the members whose rank this week already puts them in a higher league next week, the *demotion zone*
those whose rank puts them lower. Both boards are Redis caches rebuilt from the ledger (DESIGN rule 2),
so the leagues rebuild with them.

Movement arrows compare a member's league rank with the one kept in a small daily snapshot (a Redis hash
per league and UTC day, written by the first look at the league that day and kept for two weeks): the
arrow shows the move since the first standings seen on the previous day. Losing it only hides arrows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from sqlalchemy import select

from sapien.accounts.models import User
from sapien.extensions import db
from sapien.leaderboards.boards import Board, board_period, decode_xp, member_of, prefix, subject_of
from sapien.leaderboards.reading import read_key
from sapien.periods import period_window
from sapien.queue import redis_connection

log = logging.getLogger(__name__)

# (slug, name, cumulative share of last week's board at or above this league), best first.
LEAGUES = (
    ("diamond", _l("Diamond league"), 0.05),
    ("gold", _l("Gold league"), 0.20),
    ("silver", _l("Silver league"), 0.50),
    ("bronze", _l("Bronze league"), 1.0),
)
LEAGUE_NAMES = {slug: name for slug, name, _share in LEAGUES}
SHOWN = 50  # rows shown above the member's own pinned row
BRONZE_CAP = 5_000  # Bronze is read from the top of this week's board: its first 5,000 places (and the viewer)
SNAPSHOT_SECONDS = 14 * 86_400


def league_for(rank: int | None, size: int) -> int:
    """The league index (0 = best) for a 1-based `rank` on a board of `size` (None: not on it → Bronze)."""
    if rank is None or size <= 0:
        return len(LEAGUES) - 1
    for index, (_slug, _name, share) in enumerate(LEAGUES):
        if rank <= max(1, round(share * size)):
            return index
    return len(LEAGUES) - 1


def _bracket(index: int, size: int) -> tuple[int, int]:
    """0-based [start, stop) ranks of last week's board that form league `index`."""
    start = 0 if index == 0 else max(1, round(LEAGUES[index - 1][2] * size))
    stop = size if index == len(LEAGUES) - 1 else max(1, round(LEAGUES[index][2] * size))
    return min(start, size), min(max(stop, start), size)


@dataclass
class LeagueRow:
    rank: int
    user_id: int
    name: str
    handle: str
    xp: int
    zone: str  # "promotion", "demotion" or ""
    move: int | None  # places gained since yesterday's snapshot (negative: lost); None when unknown
    is_me: bool = False


@dataclass
class LeaguePage:
    league: str
    league_name: object
    rows: list[LeagueRow]
    me: LeagueRow | None
    size: int
    week_ends: datetime
    promotion_to: object | None
    demotion_to: object | None


def _snapshot_key(league: str, week: str, day: str) -> str:
    return f"{prefix()}:league-snapshot:{week}:{league}:{day}"


def league_page(viewer_id: int, now: datetime) -> LeaguePage | None:
    """The viewer's league this week: its members by this week's XP, zones, arrows and the viewer's row."""
    try:
        return _league_page(viewer_id, now)
    except RedisError:
        log.warning("leaderboards: Redis unavailable, no league page")
        return None


def _league_page(viewer_id: int, now: datetime) -> LeaguePage:
    connection = redis_connection()
    this_key, _frozen = read_key(Board("xp", "week"), now, connection)
    last_key = Board("xp", "week").key(now - timedelta(days=7))
    week = board_period("week", now)
    pipe = connection.pipeline(transaction=False)
    pipe.zcard(last_key)
    pipe.zrevrank(last_key, member_of(viewer_id))
    pipe.zcard(this_key)
    last_size, last_rank, this_size = pipe.execute()
    index = league_for(last_rank + 1 if last_rank is not None else None, last_size)
    slug, name, _share = LEAGUES[index]

    # The league's members: a bracket of last week's board; Bronze is everyone on this week's board
    # outside the higher brackets (plus the viewer, who may not have scored yet).
    if index < len(LEAGUES) - 1:
        start, stop = _bracket(index, last_size)
        members = {subject_of(m) for m in connection.zrevrange(last_key, start, stop - 1)} if stop > start else set()
    else:
        _start, higher_stop = _bracket(index, last_size)
        higher = {subject_of(m) for m in connection.zrevrange(last_key, 0, higher_stop - 1)} if higher_stop else set()
        members = {subject_of(m) for m in connection.zrevrange(this_key, 0, BRONZE_CAP - 1)} - higher
    members.add(viewer_id)
    ids = sorted(members)
    pipe = connection.pipeline(transaction=False)
    for user_id in ids:
        pipe.zscore(this_key, member_of(user_id))
        pipe.zrevrank(this_key, member_of(user_id))
    results = pipe.execute()
    scored = []
    for position, user_id in enumerate(ids):
        score, global_rank = results[2 * position], results[2 * position + 1]
        scored.append((score or 0.0, user_id, global_rank))
    hidden = set(db.session.scalars(select(User.id).where(User.id.in_(ids), (User.hide_from_boards.is_(True)) | (User.is_banned.is_(True)))))
    scored = [row for row in scored if row[1] not in hidden or row[1] == viewer_id]
    scored.sort(key=lambda row: (-row[0], row[1]))

    today = now.date().isoformat()
    yesterday = (now - timedelta(days=1)).date().isoformat()
    current = {user_id: position + 1 for position, (_score, user_id, _rank) in enumerate(scored)}
    pipe = connection.pipeline(transaction=False)
    pipe.hgetall(_snapshot_key(slug, week, yesterday))
    pipe.exists(_snapshot_key(slug, week, today))
    before, have_today = pipe.execute()
    if not have_today and current:
        pipe = connection.pipeline(transaction=False)
        pipe.hset(_snapshot_key(slug, week, today), mapping={str(k): v for k, v in current.items()})
        pipe.expire(_snapshot_key(slug, week, today), SNAPSHOT_SECONDS)
        pipe.execute()
    before = {int(k): int(v) for k, v in before.items()}

    shown_ids = [user_id for _score, user_id, _rank in scored[:SHOWN]]
    if viewer_id not in shown_ids:
        shown_ids.append(viewer_id)
    names = {row.id: (row.display_name, row.username) for row in db.session.execute(
        select(User.id, User.display_name, User.username).where(User.id.in_(shown_ids)))}
    rows, mine = [], None
    for position, (score, user_id, global_rank) in enumerate(scored):
        if user_id not in names:
            continue
        next_index = league_for(global_rank + 1 if global_rank is not None else None, this_size) if score else len(LEAGUES) - 1
        zone = "promotion" if next_index < index else "demotion" if next_index > index else ""
        rank = position + 1
        move = before[user_id] - rank if user_id in before else None
        row = LeagueRow(rank, user_id, *names[user_id], xp=decode_xp(score) if score else 0, zone=zone, move=move,
                        is_me=user_id == viewer_id)
        if position < SHOWN:
            rows.append(row)
        if row.is_me:
            mine = row
    _start, week_end = period_window("week", now)
    return LeaguePage(
        league=slug, league_name=name, rows=rows, me=mine, size=len(scored), week_ends=week_end,
        promotion_to=LEAGUES[index - 1][1] if index > 0 else None,
        demotion_to=LEAGUES[index + 1][1] if index < len(LEAGUES) - 1 else None,
    )
