"""What a member reads about matches: the per-item breakdown (the learning moment) and match history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from sapien.accounts.models import User
from sapien.arena.models import ArenaAnswer, ArenaMatch, ArenaPlayer
from sapien.extensions import db
from sapien.labeling.models import Item, TaskPack


@dataclass(frozen=True)
class BreakdownRow:
    item_id: int
    text: str
    shown: str
    truth: str
    planted: bool
    guideline: str
    mine: ArenaAnswer | None
    theirs: ArenaAnswer | None
    duel: bool = False

    def outcome(self, answer: ArenaAnswer | None, planted: bool, truth: str) -> str:
        """found, missed, false_alarm, wrong_fix, fine or skipped; in a duel right, wrong, live or skipped."""
        if answer is None:
            return "skipped"
        if self.duel:
            return "live" if not truth else ("right" if answer.label == truth else "wrong")
        if answer.flagged:
            if not planted:
                return "false_alarm"
            return "found" if answer.label == truth else "wrong_fix"
        return "missed" if planted else "fine"

    @property
    def my_outcome(self) -> str:
        return self.outcome(self.mine, self.planted, self.truth)

    @property
    def their_outcome(self) -> str:
        return self.outcome(self.theirs, self.planted, self.truth)


@dataclass(frozen=True)
class SeatView:
    seat: ArenaPlayer
    username: str


@dataclass(frozen=True)
class MatchView:
    match: ArenaMatch
    me: SeatView
    opponent: SeatView | None
    pack: TaskPack
    rows: list[BreakdownRow]

    @property
    def outcome(self) -> str:
        if self.match.winner_id is None:
            return "draw"
        return "won" if self.match.winner_id == self.me.seat.user_id else "lost"


def _seat_views(match_id: int) -> list[SeatView]:
    rows = db.session.execute(select(ArenaPlayer, User.username).join(User, User.id == ArenaPlayer.user_id)
                              .where(ArenaPlayer.match_id == match_id).order_by(ArenaPlayer.seat)).all()
    return [SeatView(seat, username) for seat, username in rows]


def match_view(match: ArenaMatch, user_id: int, *, with_answers: bool) -> MatchView | None:
    """The match as `user_id` sees it; None when they hold no seat. Answers of the opponent and the truth are
    only read once the match is over (`with_answers`)."""
    seats = _seat_views(match.id)
    me = next((one for one in seats if one.seat.user_id == user_id and not one.seat.is_ghost), None)
    if me is None:
        return None
    opponent = next((one for one in seats if one is not me), None)
    pack = db.session.get(TaskPack, match.pack_id)
    item_rows = {item.id: item for item in db.session.scalars(select(Item).where(Item.id.in_(match.item_ids)))}
    answers = {}
    query = select(ArenaAnswer).where(ArenaAnswer.match_id == match.id)
    if not with_answers:
        query = query.where(ArenaAnswer.user_id == user_id)
    for answer in db.session.scalars(query):
        answers[(answer.user_id, answer.item_id)] = answer
    rows = []
    for item_id in match.item_ids:
        item = item_rows.get(item_id)
        key = str(item_id)
        rows.append(BreakdownRow(
            item_id=item_id,
            text=(item.payload or {}).get("text", "") if item else "",
            shown=match.shown.get(key, ""),
            truth=match.truth.get(key, "") if with_answers else "",
            planted=key in match.planted if with_answers else False,
            guideline=(item.gold_explanation if item else "") or pack.instructions if with_answers else "",
            mine=answers.get((user_id, item_id)),
            theirs=answers.get((opponent.seat.user_id, item_id)) if opponent and with_answers else None,
            duel=match.mode == "accuracy_duel",
        ))
    return MatchView(match, me, opponent, pack, rows)


@dataclass(frozen=True)
class HistoryRow:
    match_id: int
    finished_at: datetime | None
    opponent: str
    ghost: bool
    score: int
    their_score: int | None
    outcome: str
    rating_before: int | None
    rating_after: int | None
    prize_tokens: int
    flag_state: str


def history(user_id: int, limit: int = 20) -> list[HistoryRow]:
    """A member's finished matches, newest first."""
    mine = db.session.execute(
        select(ArenaPlayer, ArenaMatch).join(ArenaMatch, ArenaMatch.id == ArenaPlayer.match_id)
        .where(ArenaPlayer.user_id == user_id, ArenaPlayer.is_ghost.is_(False), ArenaMatch.status == "finished",
               ArenaMatch.mode != "guild_clash")  # a clash is a team result: its page and the guild's list show it
        .order_by(ArenaMatch.id.desc()).limit(limit)
    ).all()
    match_ids = [match.id for _seat, match in mine]
    others = {}
    if match_ids:
        for seat, username in db.session.execute(select(ArenaPlayer, User.username).join(User, User.id == ArenaPlayer.user_id)
                                                 .where(ArenaPlayer.match_id.in_(match_ids), ArenaPlayer.user_id != user_id)):
            others[seat.match_id] = (seat, username)
    rows = []
    for seat, match in mine:
        other, name = others.get(match.id, (None, ""))
        outcome = "draw" if match.winner_id is None else ("won" if match.winner_id == user_id else "lost")
        rows.append(HistoryRow(match.id, match.finished_at, name, bool(other and other.is_ghost), seat.score,
                               other.score if other else None, outcome, seat.rating_before, seat.rating_after, seat.prize_tokens,
                               match.flag_state))
    return rows
