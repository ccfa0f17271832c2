"""The matchmaking queue, in Redis: members wait in a sorted set by rating; a Lua script pairs atomically.

`arena:queue:<mode>` (sorted set: member → mu), `arena:joined:<mode>` (hash: member → when they joined,
epoch seconds) and `arena:pairing` (hash: member → "<opponent>:<when>" while their match is being made).
One script joins and tries to pair: it looks at the member's neighbours by rating and takes the closest
one within the window, which widens with the longer wait of the two. Redis runs a script alone, so a
member is paired once and a double join is one entry. The database still has the last word: a member
in an active match is never queued, and the match's unique seat index refuses a second active match.
When nobody comes within `GHOST_AFTER` seconds the member plays a ghost (see `matches.start_ghost_match`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l

from sapien.arena import matches, prizes, ratings
from sapien.arena.errors import AlreadyInMatch, ArenaError, NoGhost
from sapien.arena.models import MODES
from sapien.ledger import service as ledger
from sapien.moderation import verdicts
from sapien.queue import redis_connection
from sapien.redis_keys import redis_key

BASE_WINDOW = 2.0  # in mu: about 80 points of shown rating
WIDEN_PER_SECOND = 0.5
DEFAULT_GHOST_AFTER = 20  # seconds
PAIRING_STALE = 15  # seconds: a "match being made" marker older than this was left by a failed request

PAIR_SCRIPT = """
local queue, joined, pairing = KEYS[1], KEYS[2], KEYS[3]
local user, now = ARGV[1], tonumber(ARGV[3])
local base, widen, join = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local since = redis.call('HGET', joined, user)
if not since then
  if join == '0' then return {'gone', ''} end
  redis.call('ZADD', queue, tonumber(ARGV[2]), user)
  redis.call('HSET', joined, user, ARGV[3])
  redis.call('HDEL', pairing, user)
  since = ARGV[3]
end
if join == '2' then return {'waiting', since} end
local rating = tonumber(redis.call('ZSCORE', queue, user))
local rank = redis.call('ZRANK', queue, user)
local lowest = rank - 1
if lowest < 0 then lowest = 0 end
local around = redis.call('ZRANGE', queue, lowest, rank + 1, 'WITHSCORES')
local best, best_gap = nil, nil
for i = 1, #around, 2 do
  local other = around[i]
  if other ~= user then
    local gap = math.abs(tonumber(around[i + 1]) - rating)
    local other_since = tonumber(redis.call('HGET', joined, other) or ARGV[3])
    local waited = math.max(now - tonumber(since), now - other_since)
    if gap <= base + widen * waited and (best_gap == nil or gap < best_gap) then best, best_gap = other, gap end
  end
end
if best then
  redis.call('ZREM', queue, user, best)
  redis.call('HDEL', joined, user, best)
  redis.call('HSET', pairing, user, best .. ':' .. ARGV[3], best, user .. ':' .. ARGV[3])
  return {'paired', best}
end
return {'waiting', since}
"""

LEAVE_SCRIPT = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


def _keys(mode: str) -> list[str]:
    return [redis_key(f"arena:queue:{mode}"), redis_key(f"arena:joined:{mode}"), redis_key("arena:pairing")]


def _script(source: str):
    scripts = current_app.extensions.setdefault("sapien_arena_scripts", {})
    if source not in scripts:
        scripts[source] = redis_connection().register_script(source)
    return scripts[source]


def ghost_after() -> int:
    return int(current_app.config.get("ARENA_GHOST_AFTER", DEFAULT_GHOST_AFTER))


def pair(user_id: int, rating_mu: float, now: datetime, *, join: bool, mode: str = matches.MODE, client=None) -> tuple[str, str]:
    """Run the pairing script once: ('paired', opponent id), ('waiting', joined at) or ('gone', '')."""
    status, value = _script(PAIR_SCRIPT)(keys=_keys(mode), args=[user_id, rating_mu, now.timestamp(), BASE_WINDOW, WIDEN_PER_SECOND,
                                                                 "1" if join else "0"], client=client)
    return status.decode(), value.decode() if isinstance(value, bytes) else str(value)


def requeue(user_id: int, now: datetime, mode: str = matches.MODE) -> None:
    """Put a member back in the queue without pairing them (their pairing fell through): whoever polls next pairs."""
    _script(PAIR_SCRIPT)(keys=_keys(mode), args=[user_id, _mu(user_id, now, mode), now.timestamp(), BASE_WINDOW, WIDEN_PER_SECOND, "2"])


def leave_queue(user_id: int, mode: str | None = None) -> bool:
    """Take the member out of the queue (of one mode, or of every mode); False when they were not in it."""
    left = False
    for one in [mode] if mode else list(MODES):
        left = bool(_script(LEAVE_SCRIPT)(keys=_keys(one)[:2], args=[user_id])) or left
    return left


@dataclass(frozen=True)
class QueueState:
    status: str  # "matched", "waiting", "starting" (a match is being made), "idle"
    match_id: int | None = None
    waited: int = 0
    message: str = ""


def _start(user_id: int, opponent_id: int, now: datetime, mode: str) -> QueueState:
    try:
        match = matches.start_match([user_id, opponent_id], now, mode=mode)
    except AlreadyInMatch:
        # One of the two was seated elsewhere in the meantime: whoever is free waits again.
        for member in (user_id, opponent_id):
            if matches.active_match_id(member) is None:
                requeue(member, now, mode)
        return queue_state(user_id, now, mode, retry=False)
    except ArenaError:
        for member in (user_id, opponent_id):
            requeue(member, now, mode)
        raise
    finally:
        redis_connection().hdel(_keys(mode)[2], user_id, opponent_id)
    return QueueState("matched", match.id)


def _mu(user_id: int, now: datetime, mode: str) -> float:
    return ratings.standing(user_id, mode, ratings.current_season(now)).mu


def join(user_id: int, now: datetime, mode: str = matches.MODE) -> QueueState:
    """Join the queue (a second join changes nothing) and pair at once if someone close is waiting."""
    active = matches.active_match_id(user_id)
    if active is not None:
        return QueueState("matched", active)
    restriction = verdicts.is_restricted(user_id, "arena", now)
    if restriction is not None:
        raise ArenaError(verdicts.restriction_message(restriction))
    fee = prizes.entry_fee()
    if fee and ledger.balance(user_id, "points") < fee:
        raise ArenaError(_l("You need %(points)s points for the entry fee.", points=fee))
    status, value = pair(user_id, _mu(user_id, now, mode), now, join=True, mode=mode)
    if status == "paired":
        return _start(user_id, int(value), now, mode)
    return QueueState("waiting", waited=max(0, int(now.timestamp() - float(value))))


def queue_state(user_id: int, now: datetime, mode: str | None = None, retry: bool = True) -> QueueState:
    """What the waiting page polls: the match once there is one; else pair again with the wider window; past
    `ghost_after` seconds, a ghost match. Without `mode`, whichever mode's queue the member waits in."""
    active = matches.active_match_id(user_id)
    if active is not None:
        return QueueState("matched", active)
    status, value = "gone", ""
    for one in [mode] if mode else list(MODES):
        mode = one
        status, value = pair(user_id, 0.0, now, join=False, mode=one)
        if status != "gone":
            break
    if status == "paired":
        return _start(user_id, int(value), now, mode)
    if status == "gone":
        marker = redis_connection().hget(_keys(mode)[2], user_id)
        if marker is not None and now.timestamp() - float(marker.decode().split(":")[1]) < PAIRING_STALE:
            return QueueState("starting")
        return QueueState("idle")
    waited = max(0, int(now.timestamp() - float(value)))
    if retry and waited >= ghost_after() and leave_queue(user_id, mode):
        try:
            match = matches.start_ghost_match(user_id, now, mode)
        except NoGhost as error:
            requeue(user_id, now, mode)
            return QueueState("waiting", waited=0, message=str(error))
        return QueueState("matched", match.id)
    return QueueState("waiting", waited=waited)
