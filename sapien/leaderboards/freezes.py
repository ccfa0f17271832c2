"""Freezing a board (the public reads a copy taken at `frozen_at`) and unfreezing it."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask_babel import lazy_gettext as _l
from redis import Redis
from sqlalchemy import func, select

from sapien.accounts.models import User
from sapien.database import as_utc, unit_of_work
from sapien.extensions import db
from sapien.leaderboards.boards import (
    LABELING_KIND,
    Board,
    LeaderboardError,
    board_redis,
    encode_xp,
    member_of,
    minute_of,
    prefix,
    window_of_board_period,
    zadd_chunks,
)
from sapien.leaderboards.models import BoardFreeze
from sapien.ledger.models import LedgerEntry
from sapien.moderation.service import record


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

        record(actor_id, "leaderboard.freeze", f"board:{name}", "", now)
    connection = board_redis()
    write_frozen_copy(connection, name, now, copy_live=True)
    return freeze


def unfreeze_board(board: Board, actor_id: int, now: datetime) -> None:
    name = board.name(now)
    with unit_of_work() as session:
        freeze = session.scalar(select(BoardFreeze).where(BoardFreeze.board == name))
        if freeze is None:
            raise LeaderboardError(_l("That board is not frozen."))
        session.delete(freeze)

        record(actor_id, "leaderboard.unfreeze", f"board:{name}", "", now)
    board_redis().delete(f"{prefix()}:frozen:{name}", f"{prefix()}:frozen_at:{name}")


def write_frozen_copy(connection: Redis, name: str, frozen_at: datetime, copy_live: bool) -> None:
    token = uuid.uuid4().hex
    temp = f"{prefix()}:tmp:{token}:frozen"
    if copy_live:
        connection.zunionstore(temp, [f"{prefix()}:{name}"])
    else:
        scores = _frozen_scores(name, frozen_at)
        zadd_chunks(connection, temp, scores)
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
    start, end = window_of_board_period(pkey)
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
