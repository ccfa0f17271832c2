"""Reading boards: a page of a board, the rows around a member, a member's ranks, gold counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis, RedisError
from sqlalchemy import select

from sapien.accounts.models import User
from sapien.extensions import db
from sapien.guilds.membership import guild_id_of, guild_names
from sapien.leaderboards.boards import (
    AROUND_RADIUS,
    EPOCH,
    PAGE_SIZE,
    PERIODS,
    Board,
    board_redis,
    built_marker,
    decode_accuracy,
    decode_xp,
    gold_correct_key,
    gold_total_key,
    log,
    member_of,
    prefix,
    subject_of,
    task_types_key,
)
from sapien.leaderboards.rebuild import rebuild_if_lost


@dataclass(frozen=True)
class Entry:
    rank: int
    subject_id: int
    score: float


def read_key(board: Board, now: datetime, connection: Redis | None = None) -> tuple[str, datetime | None]:
    """The Redis key the public reads for `board`: the frozen copy while a freeze holds."""
    connection = connection or board_redis()
    name = board.name(now)
    if board.freezable:
        frozen = connection.get(f"{prefix()}:frozen_at:{name}")
        if frozen:
            return f"{prefix()}:frozen:{name}", datetime.fromisoformat(frozen.decode())
    return f"{prefix()}:{name}", None


def top_entries(key: str, offset: int = 0, limit: int = PAGE_SIZE, connection: Redis | None = None) -> list[Entry]:
    """One ZREVRANGE: the `limit` entries from rank `offset` (0-based)."""
    connection = connection or board_redis()
    rows = connection.zrevrange(key, offset, offset + limit - 1, withscores=True)
    return [Entry(offset + index + 1, subject_of(member), score) for index, (member, score) in enumerate(rows)]


def around_entries(key: str, subject_id: int, radius: int = AROUND_RADIUS, connection: Redis | None = None) -> tuple[int | None, list[Entry]]:
    """The subject's 1-based rank and the entries `radius` places above and below it (ZREVRANK + ZREVRANGE)."""
    connection = connection or board_redis()
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
    connection = board_redis()
    key, frozen_at = read_key(board, now, connection)
    viewer_subject = viewer_id
    my_guild_id = None
    if board.metric == "guilds" and viewer_id is not None:
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

    connection = board_redis()
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
    connection = board_redis()
    pipe = connection.pipeline(transaction=False)
    pipe.hmget(gold_correct_key(), members)
    pipe.hmget(gold_total_key(), members)
    correct, total = pipe.execute()
    return {uid: (int(c or 0), int(t)) for uid, c, t in zip(user_ids, correct, total, strict=True) if t}


def all_time_rank(user_id: int, now: datetime) -> int | None:
    """The member's 1-based rank on the public all-time XP board (None when absent or Redis is down)."""
    try:
        key, _frozen_at = read_key(Board("xp", "all"), now)
        rank = board_redis().zrevrank(key, member_of(user_id))
    except RedisError:
        log.warning("leaderboards: Redis unavailable, no rank for the profile")
        return None
    return None if rank is None else rank + 1


def guild_totals(guild_ids: list[int]) -> dict[int, int]:
    """Each guild's all-time total XP from the board of guilds (0 when Redis is out of reach)."""
    if not guild_ids:
        return {}
    key = Board(metric="guilds").key(EPOCH)  # the all-time board's key names no moment
    try:
        scores = board_redis().zmscore(key, [member_of(guild_id) for guild_id in guild_ids])
    except RedisError:
        return {}
    return {guild_id: int(score or 0) for guild_id, score in zip(guild_ids, scores, strict=True)}
