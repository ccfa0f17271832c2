"""Writing to the boards as XP and gold results arrive (listeners) and resyncing one member."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from flask import current_app
from redis import RedisError
from sqlalchemy import and_, bindparam, func, select

from sapien.accounts.models import User
from sapien.database import as_utc, built_once
from sapien.extensions import db
from sapien.guilds.models import GuildMembership
from sapien.leaderboards.boards import (
    PERIOD_GRACE,
    PERIODS,
    TIME_SLOTS,
    VOLUME_SLOTS,
    board_period,
    board_redis,
    board_scripts,
    board_windows,
    encode_accuracy,
    encode_xp,
    gold_correct_key,
    gold_total_key,
    log,
    member_of,
    minute_of,
    prefix,
    queue_if_rebuilding,
    task_type_of,
    task_types_key,
)
from sapien.ledger.models import LedgerEntry
from sapien.periods import period_window


def _member_facts(user_id: int) -> tuple[bool, int | None]:
    """(hidden from boards?, guild id) in one indexed query."""

    row = db.session.execute(_member_facts_statement(), {"user_id": user_id}).first()
    if row is None:
        return True, None
    return bool(row[0]), row[1]


@built_once
def _member_facts_statement():
    # Every XP move and gold answer reads it.
    return (
        select(User.hide_from_boards | User.is_banned, GuildMembership.guild_id)
        .outerjoin(GuildMembership, GuildMembership.user_id == User.id)
        .where(User.id == bindparam("user_id"))
    )


def key_expiry(pkey: str, end: datetime | None) -> datetime | None:
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
    connection = board_redis()
    xp_update, total_update, _ = board_scripts(connection)
    member_keys: list[str] = []
    guild_keys: list[str] = []
    expiring: list[tuple[str, datetime]] = []
    for period in PERIODS:
        pkey = board_period(period, now)
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
        queue_if_rebuilding(connection, pipe, op)
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
    _, _, gold_update = board_scripts(board_redis())
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
    return [(board_period(period, now), *period_window(period, now)) for period in PERIODS]


def _move_member_to_guild(user_id: int, guild_id: int, now: datetime, direction: int) -> None:
    hidden, _ = _member_facts(user_id)
    totals = _member_totals(user_id, _current_windows(now)).get("all", {})
    connection = board_redis()
    _, total_update, _ = board_scripts(connection)
    pipe = connection.pipeline(transaction=True)
    queue_if_rebuilding(connection, pipe, {"op": "guild", "guild_id": guild_id})
    member = member_of(user_id)
    for period in PERIODS:
        pkey = board_period(period, now)
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
    connection = board_redis()
    member = member_of(user_id)
    scopes = {"all"} | {f"t:{t.decode()}" for t in connection.smembers(task_types_key())} | set(totals)
    current = {board_period(period, now) for period in PERIODS}
    pipe = connection.pipeline(transaction=True)
    queue_if_rebuilding(connection, pipe, {"op": "member", "user_id": user_id})
    targets = [(scope, scope, pkey) for scope in scopes for pkey, _start, _end in windows]
    if guild_id is not None:  # guild boards exist for the current periods only
        targets += [(f"g:{guild_id}", "all", pkey) for pkey in current]
    expiries = {pkey: key_expiry(pkey, end) for pkey, _start, end in windows}
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
