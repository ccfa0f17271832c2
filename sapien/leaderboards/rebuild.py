"""Rebuilding every board from the ledger into temporary keys, swapped in atomically."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis, RedisError
from sqlalchemy import BigInteger, and_, cast, func, select

from sapien.accounts.models import User
from sapien.database import as_utc
from sapien.extensions import db
from sapien.guilds.models import GuildMembership
from sapien.leaderboards.boards import (
    EPOCH,
    PERIODS,
    board_period,
    board_redis,
    board_windows,
    built_marker,
    encode_accuracy,
    encode_xp,
    gold_correct_key,
    gold_total_key,
    member_of,
    minute_of,
    pending_key,
    prefix,
    rebuilding_key,
    task_type_of,
    task_types_key,
    zadd_chunks,
)
from sapien.leaderboards.freezes import frozen_boards, write_frozen_copy
from sapien.leaderboards.recording import key_expiry, min_gold, record_xp, resync_member
from sapien.ledger.models import LedgerEntry
from sapien.periods import period_window
from sapien.quality.reputation import gold_accuracy_by_member
from sapien.queue import PendingWork, enqueue_once, pending_work_source


@dataclass
class RebuildReport:
    boards: int = 0
    entries: int = 0
    frozen: int = 0
    accuracy: bool = False
    notes: list[str] = field(default_factory=list)


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
    connection = board_redis()
    report = RebuildReport()
    lock = connection.lock(f"{prefix()}:rebuild-lock", timeout=900, blocking_timeout=900)
    if not lock.acquire(blocking=not if_lost):
        return None
    try:
        if if_lost and connection.exists(built_marker()):
            return None
        gold_rows = gold_accuracy_by_member(1)
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
            write_frozen_copy(connection, name, frozen_at, copy_live=False)
        report.frozen = len(freezes)
        frozen_names = {name for name, _ in freezes}
        for raw in connection.scan_iter(match=f"{prefix()}:frozen_at:*", count=1000):
            name = raw.decode()[len(f"{prefix()}:frozen_at:") :]
            if name not in frozen_names:
                connection.delete(raw, f"{prefix()}:frozen:{name}")
    finally:
        lock.release()
    return report


def rebuild_if_lost(now: datetime) -> bool:
    """Boards lost with Redis (a flush, a restart without persistence) rebuild on the first read that
    misses them, in that reader's request; readers meanwhile see what there is instead of waiting on the
    lock. True when this call rebuilt them."""
    return rebuild_all(now, if_lost=True) is not None


def _rebuild_from_snapshot(snapshot, connection: Redis, now: datetime, gold_rows, report: RebuildReport) -> tuple[list[dict], set[int]]:
    """Compute every board from one database snapshot, write temp keys, swap; returns the queued live
    updates and which of their ledger entries the snapshot already counted."""

    token = uuid.uuid4().hex
    windows = board_windows(now)
    boards = _xp_aggregates(snapshot, windows)
    hidden = set(snapshot.execute(select(User.id).where(User.hide_from_boards.is_(True) | User.is_banned.is_(True))).scalars())
    memberships = dict(snapshot.execute(select(GuildMembership.user_id, GuildMembership.guild_id)).all())
    pkeys = [pkey for pkey, _start, _end in windows]
    scores: dict[str, dict[str, float]] = {}
    # Guild boards follow current membership, so they exist for the current periods only.
    for pkey in (board_period(period, now) for period in PERIODS):
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
            zadd_chunks(connection, f"{prefix()}:tmp:{token}:{name}", board_scores)
            report.entries += len(board_scores)
    # Stale boards of the kept periods (a guild that emptied, a member who hid) must go too.
    stale = set()
    for pattern in (f"{prefix()}:xp:*", f"{prefix()}:guilds:*", f"{prefix()}:accuracy:*"):
        for raw in connection.scan_iter(match=pattern, count=1000):
            name = raw.decode()[len(prefix()) + 1 :]
            if name.rsplit(":", 1)[-1] in pkeys and name not in scores:
                stale.add(name)
    expiries = {pkey: key_expiry(pkey, end) for pkey, _start, end in windows}
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
    pipe = board_redis().pipeline(transaction=True)
    for index, period in enumerate(PERIODS):
        pkey = board_period(period, now)
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
        missing = not board_redis().exists(built_marker())
    except RedisError:
        return []
    return [PendingWork("jobs.leaderboards.rebuild_boards", (), "leaderboards-rebuild-reconcile")] if missing else []
