"""Challenges: a member names another member; the match starts when the other accepts."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from sapien.accounts.models import User
from sapien.arena import matches
from sapien.arena.errors import ArenaError
from sapien.arena.models import ArenaChallenge, ArenaMatch
from sapien.database import unit_of_work
from sapien.extensions import db

OPEN_LIMIT = 5


def challenge(challenger_id: int, username: str, now: datetime) -> ArenaChallenge:
    opponent = db.session.scalar(select(User).where(func.lower(User.username) == (username or "").strip().lower()))
    if opponent is None:
        raise ArenaError(_l("There is no member called %(name)s.", name=(username or "").strip()[:40]), "username")
    if opponent.id == challenger_id:
        raise ArenaError(_l("You cannot challenge yourself."), "username")
    with unit_of_work() as session:
        waiting = session.scalar(select(func.count()).select_from(ArenaChallenge)
                                 .where(ArenaChallenge.challenger_id == challenger_id, ArenaChallenge.status == "open"))
        if waiting >= OPEN_LIMIT:
            raise ArenaError(_l("You have %(count)s challenges waiting for an answer already.", count=waiting), "username")
        row = ArenaChallenge(challenger_id=challenger_id, opponent_id=opponent.id, status="open", created_at=now)
        session.add(row)
        session.flush()
    return row


def incoming(user_id: int) -> list[tuple[ArenaChallenge, str]]:
    return list(db.session.execute(
        select(ArenaChallenge, User.username).join(User, User.id == ArenaChallenge.challenger_id)
        .where(ArenaChallenge.opponent_id == user_id, ArenaChallenge.status == "open").order_by(ArenaChallenge.id.desc()).limit(10)
    ))


def respond(challenge_id: int, user_id: int, *, accept: bool, now: datetime) -> ArenaMatch | None:
    """The challenged member accepts (the match starts) or declines; only they may, and only once."""
    with unit_of_work() as session:
        row = session.get(ArenaChallenge, challenge_id)
        if row is None or row.opponent_id != user_id:
            raise ArenaError(_l("There is no such challenge for you."))
        moved = session.execute(update(ArenaChallenge).where(ArenaChallenge.id == challenge_id, ArenaChallenge.status == "open")
                                .values(status="accepted" if accept else "declined").returning(ArenaChallenge.id)).scalar()
        if moved is None:
            raise ArenaError(_l("That challenge was already answered."))
        if not accept:
            return None
        match = matches.start_match([row.challenger_id, user_id], now)
        row.match_id = match.id
    return match
