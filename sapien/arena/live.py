"""The live state a match page polls, kept in one Redis hash per match so a poll reads no table.

Fields: `status`, `deadline` (epoch seconds), `items`, `p:<user id>` (how many that seat answered) and
`g:<user id>` (a ghost's answer offsets in ms, JSON: its progress is how many of them have passed).
A lost hash is rebuilt from the database on the next poll (one indexed read), so Redis stays a cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from sapien.arena.models import ArenaAnswer, ArenaMatch, ArenaPlayer
from sapien.database import as_utc
from sapien.extensions import db
from sapien.queue import redis_connection
from sapien.redis_keys import redis_key

TTL_SECONDS = 3600


def _key(match_id: int) -> str:
    return redis_key(f"arena:match:{match_id}")


def publish(match: ArenaMatch, seats: list[ArenaPlayer], ghost_offsets: dict[int, list[int]] | None = None) -> None:
    mapping = {"status": match.status, "deadline": as_utc(match.deadline).timestamp(), "started": as_utc(match.started_at).timestamp(),
               "items": len(match.item_ids)}
    for seat in seats:
        if seat.is_ghost:
            mapping[f"g:{seat.user_id}"] = json.dumps(sorted((ghost_offsets or {}).get(seat.user_id, [])))
        else:
            mapping[f"p:{seat.user_id}"] = seat.answered
    connection = redis_connection()
    pipe = connection.pipeline()
    pipe.hset(_key(match.id), mapping=mapping)
    pipe.expire(_key(match.id), TTL_SECONDS)
    pipe.execute()


def answered(match_id: int, user_id: int, count: int) -> None:
    redis_connection().hset(_key(match_id), f"p:{user_id}", count)


def finished(match_id: int) -> None:
    redis_connection().hset(_key(match_id), "status", "finished")


@dataclass(frozen=True)
class LiveState:
    status: str
    seconds_left: int
    items: int
    progress: dict[int, int]  # user id → answered (a ghost's by its replayed clock)


def _rebuild(match_id: int) -> dict[str, str] | None:
    match = db.session.get(ArenaMatch, match_id)
    if match is None:
        return None
    seats = list(db.session.scalars(select(ArenaPlayer).where(ArenaPlayer.match_id == match_id)))
    ghosts = {seat.user_id for seat in seats if seat.is_ghost}
    offsets: dict[int, list[int]] = {user_id: [] for user_id in ghosts}
    if ghosts:
        for user_id, offset in db.session.execute(select(ArenaAnswer.user_id, ArenaAnswer.offset_ms)
                                                  .where(ArenaAnswer.match_id == match_id, ArenaAnswer.user_id.in_(ghosts))):
            offsets[user_id].append(offset)
    publish(match, seats, offsets)
    return {key.decode() if isinstance(key, bytes) else key: value.decode() if isinstance(value, bytes) else value
            for key, value in redis_connection().hgetall(_key(match_id)).items()}


def state(match_id: int, now: datetime) -> LiveState | None:
    raw = redis_connection().hgetall(_key(match_id))
    fields = {key.decode(): value.decode() for key, value in raw.items()} if raw else _rebuild(match_id)
    if fields is None:
        return None
    elapsed_ms = (now.timestamp() - float(fields["started"])) * 1000
    progress = {}
    for key, value in fields.items():
        if key.startswith("p:"):
            progress[int(key[2:])] = int(value)
        elif key.startswith("g:"):
            progress[int(key[2:])] = sum(1 for offset in json.loads(value) if offset <= elapsed_ms)
    return LiveState(fields["status"], max(0, int(float(fields["deadline"]) - now.timestamp() + 0.999)), int(fields["items"]), progress)
