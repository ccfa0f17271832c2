"""Leaderboards: Redis sorted sets that cache rankings; the ledger (and gold results) are the truth.

Boards
------
* XP boards ``lb:xp:<scope>:<period>``: scope ``all``, ``t:<task type>`` (ledger kind ``labeling:<task type>``)
  or ``g:<guild id>`` (the guild's current members); period ``all``, ``w<ISO year>-W<week>``,
  ``m<year>-<month>`` or ``s<year>-Q<quarter>`` (a season is a calendar quarter, UTC).
* The board of guilds ``lb:guilds:<period>``: the total XP of each guild's current members.
* The accuracy board ``lb:accuracy:all``: gold accuracy, for members with at least
  ``LEADERBOARD_ACCURACY_MIN_GOLD`` gold answers; the counts behind it live in two Redis hashes.

Tie-break rule (encoded in the score, so Redis alone orders the board)
----------------------------------------------------------------------
* XP boards: more XP first; equal XP → whoever reached that total first (to the minute, UTC); still equal →
  the older account (lower member id). Score = ``xp * 2**26 + (2**26 - 1 - minute)`` where ``minute`` counts
  minutes since 2020-01-01 of the member's latest XP entry on that board; exact up to 134 million XP.
  Members are stored as ``10**10 - user_id`` zero-padded, so Redis's reverse-lexicographic order of equal
  scores puts the lower id first.
* Accuracy: higher accuracy first (to 1 ppm); equal → more gold answers; then the lower member id.
* Guilds: more total XP first; equal → the older guild (lower guild id).

Members who hide themselves from boards are never written to public boards (their XP still counts
towards their guild's total). A moderator can freeze a board (end of a season): the public then reads a
copy taken at ``frozen_at`` while the live board keeps recording; the copy is rebuilt from the ledger
entries up to ``frozen_at``. ``rebuild_all`` rebuilds everything into temporary keys and swaps them in
with one atomic MULTI, so a flushed Redis loses nothing and readers never see a half-built board.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from redis import Redis, RedisError
from sqlalchemy import BigInteger, and_, cast, func, select

from sapien.accounts.models import User
from sapien.database import as_utc, unit_of_work
from sapien.errors import DomainError
from sapien.extensions import db
from sapien.leaderboards.models import BoardFreeze
from sapien.ledger.models import LedgerEntry
from sapien.queue import PendingWork, enqueue_once, pending_work_source, redis_connection
from sapien.redis_keys import redis_key

log = logging.getLogger(__name__)

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
TIME_SLOTS = 2**26  # minutes: ~127 years from EPOCH
MEMBER_BASE = 10**10
VOLUME_SLOTS = 2**24
PERIODS = ("all", "week", "month", "season")
METRICS = ("xp", "accuracy", "guilds")
PAGE_SIZE = 100
AROUND_RADIUS = 5
LABELING_KIND = "labeling:"
PERIOD_GRACE = {"week": timedelta(days=35), "month": timedelta(days=100), "season": timedelta(days=400)}


# --- keys: all under the deployment's prefix (sapien/redis_keys.py) ---------------------------------

def prefix() -> str:
    """Every board key starts with this: the deployment's Redis key prefix, then `lb`."""
    return redis_key("lb")


def built_marker() -> str:
    return f"{prefix()}:built_at"


def task_types_key() -> str:
    return f"{prefix()}:task_types"


def gold_correct_key() -> str:
    return f"{prefix()}:gold:correct"


def gold_total_key() -> str:
    return f"{prefix()}:gold:total"


def rebuilding_key() -> str:
    return f"{prefix()}:rebuilding"


def pending_key() -> str:
    return f"{prefix()}:pending"


PERIOD_LABELS = {"all": _l("All time"), "week": _l("This week"), "month": _l("This month"), "season": _l("This season")}
METRIC_LABELS = {"xp": _l("XP"), "accuracy": _l("Gold accuracy"), "guilds": _l("Guilds")}


class LeaderboardError(DomainError):
    pass


# --- encoding ------------------------------------------------------------------------------------

def member_of(subject_id: int) -> str:
    return f"{MEMBER_BASE - subject_id:010d}"


def subject_of(member: bytes | str) -> int:
    return MEMBER_BASE - int(member)


def minute_of(moment: datetime) -> int:
    return max(0, int((as_utc(moment) - EPOCH).total_seconds() // 60))


def encode_xp(xp: int, minute: int) -> int:
    return xp * TIME_SLOTS + (TIME_SLOTS - 1 - minute)


def decode_xp(score: float) -> int:
    return int(score) // TIME_SLOTS


def encode_accuracy(correct: int, total: int) -> int:
    return (correct * 1_000_000 // total) * VOLUME_SLOTS + min(total, VOLUME_SLOTS - 1)


def decode_accuracy(score: float) -> tuple[float, int]:
    """(accuracy percent, gold volume — capped at 16.7 million)."""
    value = int(score)
    return (value // VOLUME_SLOTS) / 10_000, value % VOLUME_SLOTS


# --- periods and boards --------------------------------------------------------------------------

def period_key(period: str, now: datetime) -> str:
    now = as_utc(now)
    if period == "all":
        return "all"
    if period == "week":
        year, week, _ = now.isocalendar()
        return f"w{year}-W{week:02d}"
    if period == "month":
        return f"m{now.year}-{now.month:02d}"
    if period == "season":
        return f"s{now.year}-Q{(now.month - 1) // 3 + 1}"
    raise LeaderboardError(_l("Choose a period from the list."), "period")


def period_window(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the period containing `now`, in UTC; (None, None) for all time."""
    now = as_utc(now)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if period == "all":
        return None, None
    if period == "week":
        start = day - timedelta(days=now.isoweekday() - 1)
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    if period == "season":
        start = day.replace(month=3 * ((now.month - 1) // 3) + 1, day=1)
        end_month = start.month + 3
        return start, start.replace(year=start.year + (end_month > 12), month=(end_month - 1) % 12 + 1)
    raise LeaderboardError(_l("Choose a period from the list."), "period")


def window_of_key(pkey: str) -> tuple[datetime | None, datetime | None]:
    """The window of a resolved period key ("w2026-W47" …), for rebuilding a frozen board."""
    if pkey == "all":
        return None, None
    kind, value = pkey[0], pkey[1:]
    if kind == "w":
        year, week = value.split("-W")
        return period_window("week", datetime.fromisocalendar(int(year), int(week), 1).replace(tzinfo=UTC))
    if kind == "m":
        year, month = value.split("-")
        return period_window("month", datetime(int(year), int(month), 1, tzinfo=UTC))
    if kind == "s":
        year, quarter = value.split("-Q")
        return period_window("season", datetime(int(year), 3 * (int(quarter) - 1) + 1, 1, tzinfo=UTC))
    raise LeaderboardError(_l("Unknown board."))


@dataclass(frozen=True)
class Board:
    metric: str = "xp"
    period: str = "all"
    task_type: str | None = None
    guild_id: int | None = None

    def name(self, now: datetime) -> str:
        if self.metric == "accuracy":
            return "accuracy:all"
        pkey = period_key(self.period, now)
        if self.metric == "guilds":
            return f"guilds:{pkey}"
        if self.guild_id is not None:
            return f"xp:g:{self.guild_id}:{pkey}"
        if self.task_type:
            return f"xp:t:{self.task_type}:{pkey}"
        return f"xp:all:{pkey}"

    def key(self, now: datetime) -> str:
        return f"{prefix()}:{self.name(now)}"

    @property
    def freezable(self) -> bool:
        return self.metric == "xp" and self.guild_id is None


def parse_board(metric: str | None, period: str | None, task_type: str | None, guild_id: int | None) -> Board:
    """A board from query-string values, refusing unknown ones with a clear message."""
    metric = metric or "xp"
    period = period or "all"
    if metric not in METRICS:
        raise LeaderboardError(_l("Choose a board from the list."), "board")
    if period not in PERIODS:
        raise LeaderboardError(_l("Choose a period from the list."), "period")
    task_type = (task_type or "").strip() or None
    if task_type and (len(task_type) > 40 or not all(ch.isalnum() or ch in "_-" for ch in task_type)):
        raise LeaderboardError(_l("Choose a task type from the list."), "task")
    if metric == "accuracy":
        return Board("accuracy", "all")
    if metric == "guilds":
        return Board("guilds", period)
    if guild_id is not None:
        return Board("xp", period, guild_id=guild_id)
    return Board("xp", period, task_type=task_type)


def _redis() -> Redis:
    return redis_connection()


# --- live updates from events --------------------------------------------------------------------

_XP_UPDATE = """
local member = ARGV[1]
local delta = tonumber(ARGV[2])
local minute = tonumber(ARGV[3])
local slots = tonumber(ARGV[4])
for _, key in ipairs(KEYS) do
  local xp, last = 0, minute
  local score = redis.call('ZSCORE', key, member)
  if score then
    score = tonumber(score)
    xp = math.floor(score / slots)
    local previous = slots - 1 - (score - xp * slots)
    if previous > last then last = previous end
  end
  xp = xp + delta
  if xp > 0 then
    redis.call('ZADD', key, string.format('%.0f', xp * slots + (slots - 1 - last)), member)
  else
    redis.call('ZREM', key, member)
  end
end
return #KEYS
"""

_TOTAL_UPDATE = """
for _, key in ipairs(KEYS) do
  local value = tonumber(redis.call('ZINCRBY', key, ARGV[2], ARGV[1]))
  if value <= 0 then redis.call('ZREM', key, ARGV[1]) end
end
return #KEYS
"""

_GOLD_UPDATE = """
local correct = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
local total = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
if total >= tonumber(ARGV[3]) and ARGV[4] == '1' then
  local ppm = math.floor(correct * 1000000 / total)
  local volume = math.min(total, tonumber(ARGV[5]) - 1)
  redis.call('ZADD', KEYS[3], string.format('%.0f', ppm * tonumber(ARGV[5]) + volume), ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return {correct, total}
"""


_QUEUE_IF_REBUILDING = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return 0
"""


def _queue_if_rebuilding(connection: Redis, pipe, op: dict) -> None:
    """While a rebuild runs, also queue the update so it can be replayed onto the fresh boards."""
    cache = current_app.extensions.setdefault("sapien_lb_queue_script", {})
    if id(connection) not in cache:
        cache[id(connection)] = connection.register_script(_QUEUE_IF_REBUILDING)
    cache[id(connection)](keys=[rebuilding_key(), pending_key()], args=[json.dumps(op)], client=pipe)


def _scripts(connection: Redis):
    cache = current_app.extensions.setdefault("sapien_lb_scripts", {})
    if id(connection) not in cache:
        cache[id(connection)] = (
            connection.register_script(_XP_UPDATE),
            connection.register_script(_TOTAL_UPDATE),
            connection.register_script(_GOLD_UPDATE),
        )
    return cache[id(connection)]


def task_type_of(kind: str) -> str | None:
    if kind.startswith(LABELING_KIND):
        return kind[len(LABELING_KIND):] or None
    return None


def _member_facts(user_id: int) -> tuple[bool, int | None]:
    """(hidden from boards?, guild id) in one indexed query."""
    from sapien.guilds.models import GuildMembership

    row = db.session.execute(
        select(User.hide_from_boards | User.is_banned, GuildMembership.guild_id)
        .outerjoin(GuildMembership, GuildMembership.user_id == User.id)
        .where(User.id == user_id)
    ).first()
    if row is None:
        return True, None
    return bool(row[0]), row[1]


def _key_expiry(pkey: str, end: datetime | None) -> datetime | None:
    """When the board of a resolved period key leaves Redis (None: all time, kept for ever)."""
    if end is None:
        return None
    return end + PERIOD_GRACE[{"w": "week", "m": "month", "s": "season"}[pkey[0]]]


def _expiry(period: str, now: datetime) -> datetime | None:
    if period == "all":
        return None
    return period_window(period, now)[1] + PERIOD_GRACE[period]


def record_xp(user_id: int, amount: int, kind: str, now: datetime, entry_id: int | None = None) -> None:
    """Move a member's XP on every board it belongs to (all periods, task type, guild) in one round trip."""
    hidden, guild_id = _member_facts(user_id)
    task_type = task_type_of(kind)
    connection = _redis()
    xp_update, total_update, _ = _scripts(connection)
    member_keys: list[str] = []
    guild_keys: list[str] = []
    expiring: list[tuple[str, datetime]] = []
    for period in PERIODS:
        pkey = period_key(period, now)
        period_keys = []
        if not hidden:
            period_keys.append(f"{prefix()}:xp:all:{pkey}")
            if task_type:
                period_keys.append(f"{prefix()}:xp:t:{task_type}:{pkey}")
            if guild_id is not None:
                period_keys.append(f"{prefix()}:xp:g:{guild_id}:{pkey}")
        if guild_id is not None:
            guild_keys.append(f"{prefix()}:guilds:{pkey}")
        member_keys += period_keys
        expires = _expiry(period, now)
        if expires:
            expiring += [(key, expires) for key in period_keys + guild_keys[-1:]]
    pipe = connection.pipeline(transaction=True)
    if entry_id is not None:
        op = {"op": "xp", "entry_id": entry_id, "user_id": user_id, "amount": amount, "kind": kind, "now": as_utc(now).isoformat()}
        _queue_if_rebuilding(connection, pipe, op)
    if member_keys:
        xp_update(keys=member_keys, args=[member_of(user_id), amount, minute_of(now), TIME_SLOTS], client=pipe)
    if guild_keys:
        total_update(keys=guild_keys, args=[member_of(guild_id), amount], client=pipe)
    if task_type:
        pipe.sadd(task_types_key(), task_type)
    for key, expires in expiring:
        pipe.expireat(key, expires)
    pipe.execute()


def record_gold(user_id: int, correct: bool) -> None:
    hidden, _ = _member_facts(user_id)
    _, _, gold_update = _scripts(_redis())
    gold_update(
        keys=[gold_correct_key(), gold_total_key(), f"{prefix()}:accuracy:all"],
        args=[member_of(user_id), 1 if correct else 0, min_gold(), "0" if hidden else "1", VOLUME_SLOTS],
    )


def min_gold() -> int:
    return int(current_app.config.get("LEADERBOARD_ACCURACY_MIN_GOLD", 20))


def _quietly(action, *args) -> None:
    """Listeners run after the commit: a Redis outage must not fail the member's request (a rebuild repairs)."""
    try:
        action(*args)
    except RedisError:
        log.warning("leaderboard update skipped (Redis unavailable); the next rebuild repairs it", exc_info=True)


def on_ledger_entry_posted(
    _sender, *, user_id: int, currency: str, amount: int, kind: str, now: datetime, entry_id: int | None = None, **_kw
) -> None:
    if currency == "xp":
        _quietly(record_xp, user_id, amount, kind, now, entry_id)


def on_gold_answered(_sender, *, user_id: int, correct: bool, **_kw) -> None:
    _quietly(record_gold, user_id, bool(correct))


def on_guild_joined(_sender, *, user_id: int, guild_id: int, now: datetime, **_kw) -> None:
    _quietly(_move_member_to_guild, user_id, guild_id, now, +1)


def on_guild_left(_sender, *, user_id: int, guild_id: int, now: datetime, **_kw) -> None:
    _quietly(_move_member_to_guild, user_id, guild_id, now, -1)


def on_profile_updated(_sender, *, user_id: int, now: datetime, visibility_changed: bool = True, **_kw) -> None:
    if visibility_changed:
        _quietly(resync_member, user_id, now)


# --- per-member recomputation (joins, leaves, privacy changes) ---------------------------------

def _member_totals(user_id: int, windows) -> dict[str, dict[str, tuple[int, datetime]]]:
    """{scope: {period key: (xp, latest entry)}} for one member over `windows`, from the ledger
    (scope "all" or "t:<task type>")."""
    columns = [LedgerEntry.kind]
    for _pkey, start, end in windows:
        inside = True if start is None else and_(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        columns += [func.sum(LedgerEntry.amount).filter(inside), func.max(LedgerEntry.created_at).filter(inside)]
    rows = db.session.execute(
        select(*columns).where(LedgerEntry.user_id == user_id, LedgerEntry.currency == "xp").group_by(LedgerEntry.kind)
    )
    totals: dict[str, dict[str, list]] = defaultdict(dict)
    for row in rows:
        task_type = task_type_of(row[0])
        for index, (pkey, _start, _end) in enumerate(windows):
            amount, latest = row[1 + 2 * index], row[2 + 2 * index]
            if latest is None:
                continue
            for scope in ("all", f"t:{task_type}") if task_type else ("all",):
                slot = totals[scope].setdefault(pkey, [0, None])
                slot[0] += int(amount)
                slot[1] = max(slot[1], as_utc(latest)) if slot[1] else as_utc(latest)
    return {scope: {p: (v[0], v[1]) for p, v in periods.items()} for scope, periods in totals.items()}


def _current_windows(now: datetime):
    return [(period_key(period, now), *period_window(period, now)) for period in PERIODS]


def _move_member_to_guild(user_id: int, guild_id: int, now: datetime, direction: int) -> None:
    hidden, _ = _member_facts(user_id)
    totals = _member_totals(user_id, _current_windows(now)).get("all", {})
    connection = _redis()
    _, total_update, _ = _scripts(connection)
    pipe = connection.pipeline(transaction=True)
    _queue_if_rebuilding(connection, pipe, {"op": "guild", "guild_id": guild_id})
    member = member_of(user_id)
    for period in PERIODS:
        pkey = period_key(period, now)
        board_key = f"{prefix()}:xp:g:{guild_id}:{pkey}"
        xp, latest = totals.get(pkey, (0, None))
        if direction > 0 and xp > 0 and not hidden:
            pipe.zadd(board_key, {member: encode_xp(xp, minute_of(latest))})
        elif direction < 0:
            pipe.zrem(board_key, member)
        if xp:
            total_update(keys=[f"{prefix()}:guilds:{pkey}"], args=[member_of(guild_id), direction * xp], client=pipe)
    pipe.execute()


def resync_member(user_id: int, now: datetime) -> None:
    """Rewrite one member's entries on every kept board from the ledger (after a privacy change)."""
    hidden, guild_id = _member_facts(user_id)
    windows = board_windows(now)
    totals = _member_totals(user_id, windows)
    connection = _redis()
    member = member_of(user_id)
    scopes = {"all"} | {f"t:{t.decode()}" for t in connection.smembers(task_types_key())} | set(totals)
    current = {period_key(period, now) for period in PERIODS}
    pipe = connection.pipeline(transaction=True)
    _queue_if_rebuilding(connection, pipe, {"op": "member", "user_id": user_id})
    targets = [(scope, scope, pkey) for scope in scopes for pkey, _start, _end in windows]
    if guild_id is not None:  # guild boards exist for the current periods only
        targets += [(f"g:{guild_id}", "all", pkey) for pkey in current]
    expiries = {pkey: _key_expiry(pkey, end) for pkey, _start, end in windows}
    for scope, source_scope, pkey in targets:
        key = f"{prefix()}:xp:{scope}:{pkey}"
        xp, latest = totals.get(source_scope, {}).get(pkey, (0, None))
        if hidden or xp <= 0:
            pipe.zrem(key, member)
        else:
            pipe.zadd(key, {member: encode_xp(xp, minute_of(latest))})
            if expiries.get(pkey):
                pipe.expireat(key, expiries[pkey])
    accuracy_key = f"{prefix()}:accuracy:all"
    correct, total = connection.hget(gold_correct_key(), member), connection.hget(gold_total_key(), member)
    if hidden or not total or int(total) < min_gold():
        pipe.zrem(accuracy_key, member)
    else:
        pipe.zadd(accuracy_key, {member: encode_accuracy(int(correct or 0), int(total))})
    pipe.execute()


# --- reading -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    rank: int
    subject_id: int
    score: float


def read_key(board: Board, now: datetime, connection: Redis | None = None) -> tuple[str, datetime | None]:
    """The Redis key the public reads for `board`: the frozen copy while a freeze holds."""
    connection = connection or _redis()
    name = board.name(now)
    if board.freezable:
        frozen = connection.get(f"{prefix()}:frozen_at:{name}")
        if frozen:
            return f"{prefix()}:frozen:{name}", datetime.fromisoformat(frozen.decode())
    return f"{prefix()}:{name}", None


def top_entries(key: str, offset: int = 0, limit: int = PAGE_SIZE, connection: Redis | None = None) -> list[Entry]:
    """One ZREVRANGE: the `limit` entries from rank `offset` (0-based)."""
    connection = connection or _redis()
    rows = connection.zrevrange(key, offset, offset + limit - 1, withscores=True)
    return [Entry(offset + index + 1, subject_of(member), score) for index, (member, score) in enumerate(rows)]


def around_entries(key: str, subject_id: int, radius: int = AROUND_RADIUS, connection: Redis | None = None) -> tuple[int | None, list[Entry]]:
    """The subject's 1-based rank and the entries `radius` places above and below it (ZREVRANK + ZREVRANGE)."""
    connection = connection or _redis()
    rank = connection.zrevrank(key, member_of(subject_id))
    if rank is None:
        return None, []
    start = max(0, rank - radius)
    return rank + 1, top_entries(key, start, rank + radius - start + 1, connection)


@dataclass
class Row:
    rank: int
    subject_id: int
    name: str
    handle: str
    value: float
    volume: int = 0
    is_me: bool = False


@dataclass
class BoardPage:
    board: Board
    rows: list[Row]
    around: list[Row]
    my_rank: int | None
    size: int
    page: int
    pages: int
    frozen_at: datetime | None
    task_types: list[str]
    guild_name: str | None = None
    my_guild_id: int | None = None
    extra: dict = field(default_factory=dict)


def _lookup(board: Board, ids: set[int]) -> tuple[dict[int, tuple[str, str]], set[int]]:
    """One batched query: display names (and which subjects may be shown) for the ids on screen."""
    if not ids:
        return {}, set()
    if board.metric == "guilds":
        from sapien.guilds.service import guild_names

        names = guild_names(ids)
        return names, set(names)
    found = db.session.execute(
        select(User.id, User.display_name, User.username, User.hide_from_boards, User.is_banned).where(User.id.in_(ids))
    ).all()
    return {row[0]: (row[1], row[2]) for row in found}, {row[0] for row in found if not row[3] and not row[4]}


def _rows(board: Board, entries: Iterable[Entry], names: dict, visible: set[int], viewer_subject: int | None) -> list[Row]:
    rows = []
    for entry in entries:
        if entry.subject_id not in visible:
            continue  # hidden since the board was written: never shown, and a resync removes it
        name, handle = names[entry.subject_id]
        if board.metric == "accuracy":
            value, volume = decode_accuracy(entry.score)
        elif board.metric == "guilds":
            value, volume = int(entry.score), 0
        else:
            value, volume = decode_xp(entry.score), 0
        rows.append(Row(entry.rank, entry.subject_id, name, handle, value, volume, entry.subject_id == viewer_subject))
    return rows


def board_page(board: Board, viewer_id: int | None, now: datetime, page: int = 1) -> BoardPage:
    """Everything the board page shows, in three Redis round trips and one batched name lookup."""
    connection = _redis()
    key, frozen_at = read_key(board, now, connection)
    viewer_subject = viewer_id
    my_guild_id = None
    if board.metric == "guilds" and viewer_id is not None:
        from sapien.guilds.service import guild_id_of

        my_guild_id = viewer_subject = guild_id_of(viewer_id)
    pipe = connection.pipeline(transaction=False)
    pipe.zcard(key)
    pipe.zrevrank(key, member_of(viewer_subject)) if viewer_subject is not None else pipe.echo("")
    pipe.smembers(task_types_key())
    pipe.exists(built_marker())
    size, my_rank, task_types, built = pipe.execute()
    if not built and rebuild_if_lost(now):
        return board_page(board, viewer_id, now, page)
    my_rank = my_rank + 1 if isinstance(my_rank, int) else None
    pages = max(1, -(-size // PAGE_SIZE))
    page = min(max(1, page), pages)
    offset = (page - 1) * PAGE_SIZE
    pipe = connection.pipeline(transaction=False)
    pipe.zrevrange(key, offset, offset + PAGE_SIZE - 1, withscores=True)
    around_start = max(0, my_rank - 1 - AROUND_RADIUS) if my_rank else 0
    if my_rank:
        pipe.zrevrange(key, around_start, my_rank - 1 + AROUND_RADIUS, withscores=True)
    results = pipe.execute()
    top = [Entry(offset + i + 1, subject_of(m), s) for i, (m, s) in enumerate(results[0])]
    around = [Entry(around_start + i + 1, subject_of(m), s) for i, (m, s) in enumerate(results[1])] if my_rank else []
    names, visible = _lookup(board, {entry.subject_id for entry in top + around})
    top_rows = _rows(board, top, names, visible, viewer_subject)
    around_rows = _rows(board, around, names, visible, viewer_subject)
    guild_name = None
    if board.guild_id is not None:
        from sapien.guilds.service import guild_names

        guild_name = guild_names([board.guild_id]).get(board.guild_id, (None, None))[0]
    return BoardPage(
        board=board,
        rows=top_rows,
        around=around_rows,
        my_rank=my_rank,
        size=size,
        page=page,
        pages=pages,
        frozen_at=frozen_at,
        task_types=sorted(t.decode() for t in task_types),
        guild_name=guild_name,
        my_guild_id=my_guild_id,
    )


@dataclass(frozen=True)
class MyRank:
    board: Board
    rank: int | None
    value: float
    size: int


def member_ranks(user_id: int, now: datetime) -> list[MyRank]:
    """The member's rank on every board they can appear on, in one pipelined round trip."""
    from sapien.guilds.service import guild_id_of

    connection = _redis()
    guild_id = guild_id_of(user_id)
    if not connection.exists(built_marker()):
        rebuild_if_lost(now)
    task_types = sorted(t.decode() for t in connection.smembers(task_types_key()))
    boards = [Board("xp", p) for p in PERIODS]
    boards += [Board("xp", p, task_type=t) for t in task_types for p in PERIODS]
    if guild_id is not None:
        boards += [Board("xp", p, guild_id=guild_id) for p in PERIODS]
        boards += [Board("guilds", p) for p in PERIODS]
    boards.append(Board("accuracy"))
    names = [board.name(now) for board in boards]
    pipe = connection.pipeline(transaction=False)
    for name in names:
        pipe.exists(f"{prefix()}:frozen_at:{name}")
    frozen = pipe.execute()
    keys = [
        f"{prefix()}:frozen:{name}" if is_frozen and board.freezable else f"{prefix()}:{name}"
        for board, name, is_frozen in zip(boards, names, frozen, strict=True)
    ]
    pipe = connection.pipeline(transaction=False)
    for board, key in zip(boards, keys, strict=True):
        subject = member_of(guild_id if board.metric == "guilds" else user_id)
        pipe.zrevrank(key, subject)
        pipe.zscore(key, subject)
        pipe.zcard(key)
    results = pipe.execute()
    ranks = []
    for index, board in enumerate(boards):
        rank, score, size = results[3 * index : 3 * index + 3]
        if rank is None and board.task_type:
            continue  # task types the member never worked on
        if board.metric == "accuracy":
            value = decode_accuracy(score)[0] if score is not None else 0
        elif board.metric == "guilds":
            value = int(score or 0)
        else:
            value = decode_xp(score) if score is not None else 0
        ranks.append(MyRank(board, rank + 1 if rank is not None else None, value, size))
    return ranks


def gold_counts(user_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(correct, total) gold answers per member as the boards last saw them (for the guild dashboard)."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    members = [member_of(uid) for uid in user_ids]
    connection = _redis()
    pipe = connection.pipeline(transaction=False)
    pipe.hmget(gold_correct_key(), members)
    pipe.hmget(gold_total_key(), members)
    correct, total = pipe.execute()
    return {uid: (int(c or 0), int(t)) for uid, c, t in zip(user_ids, correct, total, strict=True) if t}


# --- freeze --------------------------------------------------------------------------------------

def freeze_board(board: Board, actor_id: int, now: datetime) -> BoardFreeze:
    """Freeze a board as it stands now: the public keeps seeing this copy; the live board keeps recording."""
    if not board.freezable:
        raise LeaderboardError(_l("Only XP boards can be frozen."))
    name = board.name(now)
    with unit_of_work() as session:
        if session.scalar(select(BoardFreeze.id).where(BoardFreeze.board == name)):
            raise LeaderboardError(_l("That board is already frozen."))
        freeze = BoardFreeze(board=name, frozen_at=now, frozen_by=actor_id)
        session.add(freeze)
        session.flush()
        from sapien.moderation.service import record

        record(actor_id, "leaderboard.freeze", f"board:{name}", "", now)
    connection = _redis()
    _write_frozen_copy(connection, name, now, copy_live=True)
    return freeze


def unfreeze_board(board: Board, actor_id: int, now: datetime) -> None:
    name = board.name(now)
    with unit_of_work() as session:
        freeze = session.scalar(select(BoardFreeze).where(BoardFreeze.board == name))
        if freeze is None:
            raise LeaderboardError(_l("That board is not frozen."))
        session.delete(freeze)
        from sapien.moderation.service import record

        record(actor_id, "leaderboard.unfreeze", f"board:{name}", "", now)
    _redis().delete(f"{prefix()}:frozen:{name}", f"{prefix()}:frozen_at:{name}")


def _write_frozen_copy(connection: Redis, name: str, frozen_at: datetime, copy_live: bool) -> None:
    token = uuid.uuid4().hex
    temp = f"{prefix()}:tmp:{token}:frozen"
    if copy_live:
        connection.zunionstore(temp, [f"{prefix()}:{name}"])
    else:
        scores = _frozen_scores(name, frozen_at)
        _zadd_chunks(connection, temp, scores)
    pipe = connection.pipeline(transaction=True)
    if connection.exists(temp):
        pipe.rename(temp, f"{prefix()}:frozen:{name}")
    else:
        pipe.delete(f"{prefix()}:frozen:{name}")
    pipe.set(f"{prefix()}:frozen_at:{name}", as_utc(frozen_at).isoformat())
    pipe.execute()


def _frozen_scores(name: str, frozen_at: datetime) -> dict[str, int]:
    """A frozen board recomputed from the ledger entries up to `frozen_at`."""
    _, rest = name.split(":", 1)
    scope, pkey = rest.rsplit(":", 1)
    start, end = window_of_key(pkey)
    conditions = [LedgerEntry.currency == "xp", LedgerEntry.created_at <= frozen_at]
    if start is not None:
        conditions += [LedgerEntry.created_at >= start, LedgerEntry.created_at < end]
    if scope.startswith("t:"):
        conditions.append(LedgerEntry.kind == LABELING_KIND + scope[2:])
    rows = db.session.execute(
        select(LedgerEntry.user_id, func.sum(LedgerEntry.amount), func.max(LedgerEntry.created_at))
        .join(User, User.id == LedgerEntry.user_id)
        .where(*conditions, User.hide_from_boards.is_(False), User.is_banned.is_(False))
        .group_by(LedgerEntry.user_id)
    )
    return {member_of(uid): encode_xp(int(xp), minute_of(latest)) for uid, xp, latest in rows if xp > 0}


def frozen_boards() -> list[BoardFreeze]:
    return list(db.session.scalars(select(BoardFreeze).order_by(BoardFreeze.frozen_at.desc())))


# --- rebuild -------------------------------------------------------------------------------------

@dataclass
class RebuildReport:
    boards: int = 0
    entries: int = 0
    frozen: int = 0
    accuracy: bool = False
    notes: list[str] = field(default_factory=list)


def _zadd_chunks(connection: Redis, key: str, scores: dict[str, float], chunk: int = 10_000) -> None:
    items = list(scores.items())
    pipe = connection.pipeline(transaction=False)
    for start in range(0, len(items), chunk):
        pipe.zadd(key, dict(items[start : start + chunk]))
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()


def board_windows(now: datetime) -> list[tuple[str, datetime | None, datetime | None]]:
    """(period key, start, end) of every period whose board is still kept: the current ones and the past
    ones inside their grace time (older boards expire from Redis and are not rebuilt)."""
    windows: list[tuple[str, datetime | None, datetime | None]] = [("all", None, None)]
    now = as_utc(now)
    for period in PERIODS[1:]:
        moment = now
        while True:
            start, end = period_window(period, moment)
            if end + PERIOD_GRACE[period] <= now:
                break
            windows.append((period_key(period, moment), start, end))
            moment = start - timedelta(seconds=1)
    return windows


def _minute_sql(moment):
    """SQL for `minute_of` (whole minutes since EPOCH) of a timestamp, so rows carry small integers."""
    epoch = int(EPOCH.timestamp())
    if db.engine.dialect.name == "postgresql":
        return cast(func.floor((func.extract("epoch", moment) - epoch) / 60), BigInteger)
    return cast((cast(func.strftime("%s", moment), BigInteger) - epoch) / 60, BigInteger)  # truncates: >= 0 here


def _xp_aggregates(snapshot, windows) -> dict[str, dict[int, list]]:
    """{board name: {user: [xp, latest minute]}} for every XP scope and kept period, in one pass over
    the ledger (one row per member and kind, one sum/latest pair per window)."""
    columns = [LedgerEntry.user_id, LedgerEntry.kind]
    for _pkey, start, end in windows:
        if start is None:
            columns += [func.sum(LedgerEntry.amount), _minute_sql(func.max(LedgerEntry.created_at))]
        else:
            inside = and_(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            columns += [func.sum(LedgerEntry.amount).filter(inside), _minute_sql(func.max(LedgerEntry.created_at).filter(inside))]
    query = select(*columns).where(LedgerEntry.currency == "xp").group_by(LedgerEntry.user_id, LedgerEntry.kind)
    pkeys = [pkey for pkey, _start, _end in windows]
    boards: dict[str, dict[int, list]] = defaultdict(dict)
    names_cache: dict[tuple[str | None, str], tuple] = {}
    positions = list(enumerate(pkeys))
    for row in snapshot.execute(query):
        user_id, kind = row[0], row[1]
        task_type = task_type_of(kind)
        for index, pkey in positions:
            minute = row[3 + 2 * index]
            if minute is None:
                continue
            amount = int(row[2 + 2 * index])
            names = names_cache.get((task_type, pkey))
            if names is None:
                names = (boards[f"xp:all:{pkey}"],) + ((boards[f"xp:t:{task_type}:{pkey}"],) if task_type else ())
                names_cache[(task_type, pkey)] = names
            for board in names:
                slot = board.get(user_id)
                if slot is None:
                    board[user_id] = [amount, minute]
                else:
                    slot[0] += amount
                    if minute > slot[1]:
                        slot[1] = minute
    return boards


def _accuracy_source():
    try:
        from sapien.quality.service import gold_accuracy_by_member
    except ImportError:
        return None
    return gold_accuracy_by_member


def rebuild_all(now: datetime, *, if_lost: bool = False) -> RebuildReport | None:
    """Rebuild every board from the ledger into temporary keys, then swap them in atomically.

    `if_lost`: a reader found the boards gone (see `rebuild_if_lost`). It rebuilds only if no other
    process holds the rebuild lock and the boards are still missing; otherwise it returns None at once.

    Safe to run twice (and concurrently: a Redis lock serialises runs). Past periods are rebuilt while
    their keys are kept (see `board_windows`). Frozen boards are rebuilt from the entries up to their freeze.
    Nothing posted during the rebuild is lost: the database is read in one snapshot, live updates made
    meanwhile are also queued in Redis, and after the swap those the snapshot did not see are replayed.
    Call it outside a unit of work (CLI, job, end of the demo seed).
    """
    session = db.session()
    if session.info.get("uow_depth", 0):
        raise RuntimeError("rebuild_all runs outside a unit of work")
    connection = _redis()
    report = RebuildReport()
    lock = connection.lock(f"{prefix()}:rebuild-lock", timeout=900, blocking_timeout=900)
    if not lock.acquire(blocking=not if_lost):
        return None
    try:
        if if_lost and connection.exists(built_marker()):
            return None
        gold = _accuracy_source()
        gold_rows = gold(1) if gold is not None else None
        freezes = [(freeze.board, as_utc(freeze.frozen_at)) for freeze in frozen_boards()]
        session.commit()  # end this session's read transaction (SQLite would otherwise block the snapshot)
        connection.delete(pending_key())
        connection.set(rebuilding_key(), "1", ex=900)
        engine_connection = db.engine.connect()
        if db.engine.dialect.name == "postgresql":
            engine_connection = engine_connection.execution_options(isolation_level="REPEATABLE READ")
        with engine_connection as snapshot, snapshot.begin():
            pending, seen = _rebuild_from_snapshot(snapshot, connection, now, gold_rows, report)
        replayed = _replay(pending, seen, now)
        if replayed:
            report.notes.append(f"replayed {replayed} update(s) posted during the rebuild")
        # Frozen copies, rebuilt from the ledger up to their freeze time; markers without a row are dropped.
        for name, frozen_at in freezes:
            _write_frozen_copy(connection, name, frozen_at, copy_live=False)
        report.frozen = len(freezes)
        frozen_names = {name for name, _ in freezes}
        for raw in connection.scan_iter(match=f"{prefix()}:frozen_at:*", count=1000):
            name = raw.decode()[len(f"{prefix()}:frozen_at:") :]
            if name not in frozen_names:
                connection.delete(raw, f"{prefix()}:frozen:{name}")
    finally:
        lock.release()
    if gold is None:
        report.notes.append("accuracy board skipped: sapien.quality.service is not installed")
        log.info("leaderboards rebuild: accuracy board skipped (sapien.quality.service not present)")
    return report


def rebuild_if_lost(now: datetime) -> bool:
    """Boards lost with Redis (a flush, a restart without persistence) rebuild on the first read that
    misses them, in that reader's request; readers meanwhile see what there is instead of waiting on the
    lock. True when this call rebuilt them."""
    return rebuild_all(now, if_lost=True) is not None


def _rebuild_from_snapshot(snapshot, connection: Redis, now: datetime, gold_rows, report: RebuildReport) -> tuple[list[dict], set[int]]:
    """Compute every board from one database snapshot, write temp keys, swap; returns the queued live
    updates and which of their ledger entries the snapshot already counted."""
    from sapien.guilds.models import GuildMembership

    token = uuid.uuid4().hex
    windows = board_windows(now)
    boards = _xp_aggregates(snapshot, windows)
    hidden = set(snapshot.execute(select(User.id).where(User.hide_from_boards.is_(True) | User.is_banned.is_(True))).scalars())
    memberships = dict(snapshot.execute(select(GuildMembership.user_id, GuildMembership.guild_id)).tuples().all())
    pkeys = [pkey for pkey, _start, _end in windows]
    scores: dict[str, dict[str, float]] = {}
    # Guild boards follow current membership, so they exist for the current periods only.
    for pkey in (period_key(period, now) for period in PERIODS):
        overall = boards.get(f"xp:all:{pkey}", {})
        totals: dict[int, int] = defaultdict(int)
        for user_id, (xp, latest) in overall.items():
            guild_id = memberships.get(user_id)
            if guild_id is None:
                continue
            totals[guild_id] += xp
            if user_id not in hidden and xp > 0:
                scores.setdefault(f"xp:g:{guild_id}:{pkey}", {})[member_of(user_id)] = encode_xp(xp, latest)
        scores[f"guilds:{pkey}"] = {member_of(gid): xp for gid, xp in totals.items() if xp > 0}
    task_types = set()
    for name, users in boards.items():
        if name.startswith("xp:t:"):
            task_types.add(name.split(":")[2])
        scores[name] = {member_of(uid): encode_xp(xp, latest) for uid, (xp, latest) in users.items() if uid not in hidden and xp > 0}
    gold_correct: dict[str, int] = {}
    gold_total: dict[str, int] = {}
    if gold_rows is not None:
        minimum = min_gold()
        accuracy = {}
        for user_id, (correct, total) in gold_rows.items():
            member = member_of(user_id)
            gold_correct[member], gold_total[member] = int(correct), int(total)
            if total >= minimum and user_id not in hidden:
                accuracy[member] = encode_accuracy(int(correct), int(total))
        scores["accuracy:all"] = accuracy
        report.accuracy = True
    for name, board_scores in scores.items():
        if board_scores:
            _zadd_chunks(connection, f"{prefix()}:tmp:{token}:{name}", board_scores)
            report.entries += len(board_scores)
    # Stale boards of the kept periods (a guild that emptied, a member who hid) must go too.
    stale = set()
    for pattern in (f"{prefix()}:xp:*", f"{prefix()}:guilds:*") + ((f"{prefix()}:accuracy:*",) if gold_rows is not None else ()):
        for raw in connection.scan_iter(match=pattern, count=1000):
            name = raw.decode()[len(prefix()) + 1 :]
            if name.rsplit(":", 1)[-1] in pkeys and name not in scores:
                stale.add(name)
    expiries = {pkey: _key_expiry(pkey, end) for pkey, _start, end in windows}
    pipe = connection.pipeline(transaction=True)
    for name, board_scores in scores.items():
        live = f"{prefix()}:{name}"
        if board_scores:
            pipe.rename(f"{prefix()}:tmp:{token}:{name}", live)
            expires = expiries.get(name.rsplit(":", 1)[-1])
            if expires:
                pipe.expireat(live, expires)
        else:
            pipe.delete(live)
    for name in stale:
        pipe.delete(f"{prefix()}:{name}")
    pipe.delete(task_types_key())
    if task_types:
        pipe.sadd(task_types_key(), *sorted(task_types))
    if gold_rows is not None:
        pipe.delete(gold_correct_key(), gold_total_key())
        if gold_total:
            pipe.hset(gold_correct_key(), mapping=gold_correct)
            pipe.hset(gold_total_key(), mapping=gold_total)
    pipe.set(built_marker(), as_utc(now).isoformat())
    # In the same MULTI: stop queueing live updates and take the queue.
    pipe.delete(rebuilding_key())
    pipe.lrange(pending_key(), 0, -1)
    pipe.delete(pending_key())
    results = pipe.execute()
    report.boards = sum(1 for board_scores in scores.values() if board_scores)
    pending = [json.loads(raw) for raw in results[-2]]
    entry_ids = [op["entry_id"] for op in pending if op["op"] == "xp"]
    seen = set(snapshot.execute(select(LedgerEntry.id).where(LedgerEntry.id.in_(entry_ids))).scalars()) if entry_ids else set()
    return pending, seen


def _replay(pending: list[dict], seen: set[int], now: datetime) -> int:
    """Apply the live updates the snapshot missed to the fresh boards."""
    count = 0
    guilds_touched: set[int] = set()
    members_touched: set[int] = set()
    for op in pending:
        if op["op"] == "xp" and op["entry_id"] not in seen:
            record_xp(op["user_id"], op["amount"], op["kind"], datetime.fromisoformat(op["now"]))
            count += 1
        elif op["op"] == "guild":
            guilds_touched.add(op["guild_id"])
        elif op["op"] == "member":
            members_touched.add(op["user_id"])
    for user_id in members_touched:
        resync_member(user_id, now)
    for guild_id in guilds_touched:
        resync_guild(guild_id, now)
    return count + len(members_touched) + len(guilds_touched)


def resync_guild(guild_id: int, now: datetime) -> None:
    """Rewrite one guild's member boards and totals (current periods) from its members' ledger entries."""
    from sapien.guilds.models import GuildMembership

    member_rows = db.session.execute(
        select(User.id, User.hide_from_boards | User.is_banned)
        .join(GuildMembership, GuildMembership.user_id == User.id)
        .where(GuildMembership.guild_id == guild_id)
    ).all()
    hidden = {uid for uid, is_hidden in member_rows if is_hidden}
    ids = [uid for uid, _ in member_rows]
    columns = [LedgerEntry.user_id]
    for period in PERIODS:
        start, end = period_window(period, now)
        inside = True if start is None else and_(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        columns += [func.sum(LedgerEntry.amount).filter(inside), func.max(LedgerEntry.created_at).filter(inside)]
    rows = db.session.execute(
        select(*columns).where(LedgerEntry.user_id.in_(ids), LedgerEntry.currency == "xp").group_by(LedgerEntry.user_id)
    ).all() if ids else []
    pipe = _redis().pipeline(transaction=True)
    for index, period in enumerate(PERIODS):
        pkey = period_key(period, now)
        board_key = f"{prefix()}:xp:g:{guild_id}:{pkey}"
        pipe.delete(board_key)
        total = 0
        for row in rows:
            xp, latest = row[1 + 2 * index], row[2 + 2 * index]
            if latest is None:
                continue
            total += int(xp)
            if row[0] not in hidden and xp > 0:
                pipe.zadd(board_key, {member_of(row[0]): encode_xp(int(xp), minute_of(latest))})
        if total > 0:
            pipe.zadd(f"{prefix()}:guilds:{pkey}", {member_of(guild_id): total})
        else:
            pipe.zrem(f"{prefix()}:guilds:{pkey}", member_of(guild_id))
    pipe.execute()


def enqueue_rebuild(now: datetime):
    """Queue a rebuild job (at most one per minute; a queued or running one is reused)."""
    return enqueue_once("jobs.leaderboards.rebuild_boards", job_id=f"leaderboards-rebuild-{as_utc(now):%Y%m%d%H%M}")


@pending_work_source("leaderboards")
def _boards_missing() -> list[PendingWork]:
    """After a Redis flush the boards are gone: the reconciler queues a rebuild."""
    try:
        missing = not _redis().exists(built_marker())
    except RedisError:
        return []
    return [PendingWork("jobs.leaderboards.rebuild_boards", (), "leaderboards-rebuild-reconcile")] if missing else []


def all_time_rank(user_id: int, now: datetime) -> int | None:
    """The member's 1-based rank on the public all-time XP board (None when absent or Redis is down)."""
    try:
        key, _frozen_at = read_key(Board("xp", "all"), now)
        rank = _redis().zrevrank(key, member_of(user_id))
    except RedisError:
        log.warning("leaderboards: Redis unavailable, no rank for the profile")
        return None
    return None if rank is None else rank + 1
