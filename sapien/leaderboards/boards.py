"""Boards: names, keys, score encodings and periods; Redis sorted sets that cache rankings (the ledger and
gold results are the truth).

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from redis import Redis

from sapien.database import as_utc
from sapien.errors import DomainError
from sapien.periods import period_key, period_window, window_of_key
from sapien.queue import redis_connection
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

PERIOD_LETTERS = {"week": "w", "month": "m", "season": "s"}


def board_period(period: str, now: datetime) -> str:
    """A board name's period part: "all", or the period's letter before its key ("w2026-W47", "m2026-11",
    "s2026-Q4"; keys from `sapien.periods`)."""
    if period == "all":
        return "all"
    if period not in PERIOD_LETTERS:
        raise LeaderboardError(_l("Choose a period from the list."), "period")
    return PERIOD_LETTERS[period] + period_key(period, now)


def window_of_board_period(part: str) -> tuple[datetime | None, datetime | None]:
    """The window of a board name's period part ("w2026-W47" …), for rebuilding a frozen board."""
    if part == "all":
        return None, None
    periods = {letter: period for period, letter in PERIOD_LETTERS.items()}
    if part[:1] not in periods:
        raise LeaderboardError(_l("Unknown board."))
    return window_of_key(periods[part[0]], part[1:])


@dataclass(frozen=True)
class Board:
    metric: str = "xp"
    period: str = "all"
    task_type: str | None = None
    guild_id: int | None = None

    def name(self, now: datetime) -> str:
        if self.metric == "accuracy":
            return "accuracy:all"
        pkey = board_period(self.period, now)
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


def board_redis() -> Redis:
    return redis_connection()


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


def queue_if_rebuilding(connection: Redis, pipe, op: dict) -> None:
    """While a rebuild runs, also queue the update so it can be replayed onto the fresh boards."""
    cache = current_app.extensions.setdefault("sapien_lb_queue_script", {})
    if id(connection) not in cache:
        cache[id(connection)] = connection.register_script(_QUEUE_IF_REBUILDING)
    cache[id(connection)](keys=[rebuilding_key(), pending_key()], args=[json.dumps(op)], client=pipe)


def board_scripts(connection: Redis):
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


def zadd_chunks(connection: Redis, key: str, scores: dict[str, float], chunk: int = 10_000) -> None:
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
            windows.append((board_period(period, moment), start, end))
            moment = start - timedelta(seconds=1)
    return windows
