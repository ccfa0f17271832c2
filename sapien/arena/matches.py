"""Error hunt matches: start one (two members, or a member and a ghost), answer, leave, finish, settle.

Invariants:
- A member holds at most one active seat (a unique partial index), so no race puts them in two matches.
- Only a seated, non-ghost member answers, each item once, before the deadline (the server's clock).
- A match is scored once: `finish` moves it from "active" to "finished" in one conditional UPDATE (the
  loser of a race sees no row and returns). Settling (ratings, prizes) is guarded the same way by
  `settled_at`, and every payout has its own ledger key.
- A flagged match (see `fairplay`) is scored but not settled until a moderator clears it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from sapien import events
from sapien.arena import clash_scoring, credit, fairplay, items, live, prizes, ratings
from sapien.arena.errors import (
    AlreadyInMatch,
    ArenaError,
    MatchNotFound,
    MatchOver,
    NoGhost,
    NotAPlayer,
    NotEnoughItems,
    TimeUp,
)
from sapien.arena.models import CLASH_MODE, ArenaAnswer, ArenaMatch, ArenaPlayer, ArenaSeen
from sapien.database import after_commit, as_utc, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.labeling.models import TaskPack

MODE = "error_hunt"
DUEL = "accuracy_duel"
DEFAULT_ITEMS = 6
DEFAULT_SECONDS = 120


def match_size() -> int:
    return int(current_app.config.get("ARENA_ITEMS", DEFAULT_ITEMS))


def match_seconds() -> int:
    return int(current_app.config.get("ARENA_MATCH_SECONDS", DEFAULT_SECONDS))


def active_match_id(user_id: int) -> int | None:
    """The member's active match, if any (one read of a unique partial index)."""
    return db.session.scalar(select(ArenaPlayer.match_id).where(ArenaPlayer.user_id == user_id, ArenaPlayer.status == "active"))


def _seats(match_id: int, lock: bool = False) -> list[ArenaPlayer]:
    query = select(ArenaPlayer).where(ArenaPlayer.match_id == match_id).order_by(ArenaPlayer.seat)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list(db.session.scalars(query))


def _open(hunt: items.HuntSet, seats: list[tuple[int, bool]], now: datetime, ghost_of: int | None = None, mode: str = MODE) -> ArenaMatch:
    """Insert the match and its seats; the caller's unit of work commits. `seats` is (user id, is_ghost)."""
    session = db.session
    season = ratings.current_season(now)
    fee = 0 if ghost_of else prizes.entry_fee()
    match = ArenaMatch(mode=mode, season_id=season.id, pack_id=hunt.pack_id, status="active", item_ids=hunt.item_ids, shown=hunt.shown,
                       planted=hunt.planted, truth=hunt.truth, ghost_of_match_id=ghost_of, entry_fee=fee, rated=True, flag_state="none",
                       flag_reasons=[], started_at=now, deadline=now + timedelta(seconds=match_seconds()))
    try:
        with session.begin_nested():
            session.add(match)
            session.flush()
            for seat, (user_id, is_ghost) in enumerate(seats):
                session.add(ArenaPlayer(match_id=match.id, user_id=user_id, seat=seat, is_ghost=is_ghost,
                                        status="done" if is_ghost else "active",
                                        rating_before=ratings.standing(user_id, mode, season).rating))
            session.flush()
    except IntegrityError as error:
        raise AlreadyInMatch(_l("You are already in a match.")) from error
    humans = [user_id for user_id, is_ghost in seats if not is_ghost]
    # The rule's last word: an item a member was shown before already has its row, so fewer rows come back
    # than were asked for and the match is refused (the caller's unit of work rolls it back).
    recorded = session.execute(dialect_insert(ArenaSeen).values([{"user_id": user_id, "item_id": item_id, "match_id": match.id}
                                                                 for user_id in humans for item_id in hunt.item_ids])
                               .on_conflict_do_nothing().returning(ArenaSeen.item_id)).all()
    if len(recorded) != len(humans) * len(hunt.item_ids):
        raise NotEnoughItems(_NO_ITEMS.get(mode, _NO_ITEMS[MODE]))
    for user_id in humans:
        prizes.charge_entry_fee(match.id, user_id, fee, now)
    return match


# What a member reads when the pool of items new to both players ran dry.
_NO_ITEMS = {
    MODE: _l("There are not enough new items for an error hunt right now: rated play never shows you an item you met before in "
             "the arena or labeled yourself. Try again when more items are verified."),
    DUEL: _l("There are not enough new gold items for an accuracy duel right now: rated play never shows you an item you met "
             "before in the arena or labeled yourself. Try again later."),
}


def start_match(user_ids: list[int], now: datetime, *, mode: str = MODE, rng: random.Random | None = None) -> ArenaMatch:
    """A live match between two members: an error hunt, or an accuracy duel."""
    if len(set(user_ids)) != 2:
        raise ArenaError(_l("A match needs two different members."))
    with unit_of_work():
        choose = items.choose_duel if mode == DUEL else items.choose_hunt
        hunt = choose(sorted(user_ids), match_size(), rng)
        if hunt is None:
            raise NotEnoughItems(_NO_ITEMS.get(mode, _NO_ITEMS[MODE]))
        # Seats in user id order: two attempts to seat the same pair lock the seat index in one order.
        match = _open(hunt, [(user_id, False) for user_id in sorted(user_ids)], now, mode=mode)
        seats = _seats(match.id)
    after_commit(lambda: live.publish(match, seats))
    return match


GHOST_CANDIDATES = 50  # recorded runs read at a time, closest rating first
GHOST_PAGES = 5  # past this many, the member keeps waiting for a live opponent


def _ghost_run(user_id: int, mode: str, mine: int) -> tuple[ArenaPlayer, ArenaMatch] | None:
    """The recorded run closest to `mine` whose items this member has never met (see `items.known_items`):
    candidates a page at a time, the member's known items among them in one read per page."""
    candidates = (
        select(ArenaPlayer, ArenaMatch).join(ArenaMatch, ArenaMatch.id == ArenaPlayer.match_id)
        .where(ArenaMatch.mode == mode, ArenaMatch.status == "finished", ArenaMatch.ghost_of_match_id.is_(None),
               ArenaPlayer.is_ghost.is_(False), ArenaPlayer.forfeited.is_(False), ArenaPlayer.user_id != user_id, ArenaPlayer.answered > 0)
        .order_by(func.abs(func.coalesce(ArenaPlayer.rating_before, 1000) - mine), ArenaMatch.id.desc(), ArenaPlayer.id)
    )
    for page in range(GHOST_PAGES):
        runs = db.session.execute(candidates.offset(page * GHOST_CANDIDATES).limit(GHOST_CANDIDATES)).all()
        known = items.known_among([user_id], sorted({item_id for _run, recorded in runs for item_id in recorded.item_ids}))
        fit = next(((run, recorded) for run, recorded in runs if not known.intersection(recorded.item_ids)), None)
        if fit is not None or len(runs) < GHOST_CANDIDATES:
            return fit
    return None


def start_ghost_match(user_id: int, now: datetime, mode: str = MODE) -> ArenaMatch:
    """An asynchronous duel against the recorded run of a member of similar rating, on items this member has
    never met (in the arena or in labeling): the ghost's answers replay on its own clock. When no recorded run
    fits, NoGhost says why and the member keeps waiting for a live opponent."""
    season = ratings.current_season(now)
    found = _ghost_run(user_id, mode, ratings.standing(user_id, mode, season).rating)
    if found is None:
        raise NoGhost(_l("No recorded run of new items for you fits yet (a ghost match never replays items you met before): "
                         "keep waiting for a live opponent."))
    run, recorded = found
    hunt = items.HuntSet(recorded.pack_id, list(recorded.item_ids), dict(recorded.truth), dict(recorded.shown), dict(recorded.planted))
    with unit_of_work() as session:
        match = _open(hunt, [(user_id, False), (run.user_id, True)], now, ghost_of=recorded.id, mode=mode)
        answers = list(session.scalars(select(ArenaAnswer).where(ArenaAnswer.match_id == recorded.id, ArenaAnswer.user_id == run.user_id)))
        for answer in answers:
            session.add(ArenaAnswer(match_id=match.id, user_id=run.user_id, item_id=answer.item_id, flagged=answer.flagged,
                                    label=answer.label, offset_ms=answer.offset_ms, created_at=now))
        session.execute(update(ArenaPlayer).where(ArenaPlayer.match_id == match.id, ArenaPlayer.user_id == run.user_id)
                        .values(answered=len(answers), time_ms=run.time_ms, finished_at=now))
        seats = _seats(match.id)
    offsets = {run.user_id: [answer.offset_ms for answer in answers]}
    after_commit(lambda: live.publish(match, seats, offsets))
    return match


def get_match(match_id: int) -> ArenaMatch:
    match = db.session.get(ArenaMatch, match_id)
    if match is None:
        raise MatchNotFound(_l("There is no such match."))
    return match


def seat_of(match_id: int, user_id: int) -> ArenaPlayer | None:
    return db.session.scalar(select(ArenaPlayer).where(ArenaPlayer.match_id == match_id, ArenaPlayer.user_id == user_id))


def answer(match_id: int, user_id: int, item_id: int, *, flagged: bool, label: str, now: datetime) -> int:
    """Record one verdict; returns how many items the member has answered. Answering the last item ends
    their run; when every seat is done the match finishes."""
    with unit_of_work() as session:
        match = get_match(match_id)
        seat = seat_of(match_id, user_id)
        if seat is None or seat.is_ghost:
            raise NotAPlayer(_l("You are not playing in this match."))
        if match.status != "active" or seat.status != "active":
            raise MatchOver(_l("This match is over for you."))
        if now >= as_utc(match.deadline):
            raise TimeUp(_l("Time is up: answers after the timer do not count."))
        if item_id not in match.item_ids:
            raise ArenaError(_l("That item is not in this match."))
        label = (label or "").strip()
        duel = match.mode == DUEL
        if flagged or duel:
            options = db.session.scalar(select(TaskPack.label_options).where(TaskPack.id == match.pack_id)) or []
            if label not in options:
                raise ArenaError(_l("Pick the right label for the item you flag.") if not duel else _l("Pick one of the pack's labels."), "label")
            flagged = flagged and not duel
        try:
            with session.begin_nested():
                session.add(ArenaAnswer(match_id=match_id, user_id=user_id, item_id=item_id, flagged=flagged, label=label if flagged or duel else "",
                                        offset_ms=int((now - as_utc(match.started_at)).total_seconds() * 1000), created_at=now))
                session.flush()
        except IntegrityError as error:
            raise ArenaError(_l("You already answered that item.")) from error
        if duel and str(item_id) not in match.truth:
            _feed_quality(user_id, item_id, label, now)
        count = session.execute(update(ArenaPlayer).where(ArenaPlayer.id == seat.id).values(answered=ArenaPlayer.answered + 1)
                                .returning(ArenaPlayer.answered)).scalar_one()
        done = count >= len(match.item_ids)
        if done:
            session.execute(update(ArenaPlayer).where(ArenaPlayer.id == seat.id).values(
                status="done", finished_at=now, time_ms=int((now - as_utc(match.started_at)).total_seconds() * 1000)))
    after_commit(lambda: live.answered(match_id, user_id, count))
    if done:
        finish_if_due(match_id, now)
    return count


def _feed_quality(user_id: int, item_id: int, label: str, now: datetime) -> None:
    """A duel's live item: the answer goes to labeling as an ordinary label (a lease and a submission), so
    quality aggregates it like any other. A member the pack would refuse (its daily cap, say) still plays;
    only the label is not recorded."""
    from sapien.errors import DomainError
    from sapien.labeling import leases as labeling_leases
    from sapien.labeling import submissions as labeling_submissions

    try:
        with db.session.begin_nested():
            lease = labeling_leases.lease_item(user_id, item_id, now)
            labeling_submissions.submit_answer(user_id, lease.id, {"labels": [label]}, now=now)
    except DomainError:
        pass


def leave(match_id: int, user_id: int, now: datetime) -> None:
    """Leaving forfeits: the seat is done with what it answered, and loses unless the other seat also forfeits."""
    with unit_of_work() as session:
        seat = seat_of(match_id, user_id)
        if seat is None or seat.is_ghost:
            raise NotAPlayer(_l("You are not playing in this match."))
        session.execute(update(ArenaPlayer).where(ArenaPlayer.id == seat.id, ArenaPlayer.status == "active")
                        .values(status="done", forfeited=True, finished_at=now))
    finish_if_due(match_id, now)


@dataclass(frozen=True)
class Tally:
    found: int
    false_alarms: int
    score: int


def tally(match: ArenaMatch, answers: list[ArenaAnswer]) -> Tally:
    """Error hunt: errors found (a planted item flagged with its true label) minus false alarms (a sound item
    flagged); flagging a planted item with another wrong label counts neither way. Accuracy duel: the
    partial credit on the gold items, as a percentage (`found` counts the fully right ones)."""
    if match.mode == DUEL:
        gold = match.truth
        scored = [credit.credit("text_classification", {"labels": [one.label]}, {"labels": [gold[str(one.item_id)]]})
                  for one in answers if str(one.item_id) in gold]
        return Tally(sum(1 for value in scored if value >= 1), 0, round(100 * sum(scored) / len(gold)) if gold else 0)
    found = false_alarms = 0
    for one in answers:
        key = str(one.item_id)
        if not one.flagged:
            continue
        if key in match.planted:
            found += one.label == match.truth.get(key)
        else:
            false_alarms += 1
    return Tally(found, false_alarms, found - false_alarms)


def _ranks(seats: list[ArenaPlayer], full_ms: int) -> list[int]:
    """Rank 1 is best: forfeits last, then score, ties by time (less is better); equal on all is a draw."""
    def key(seat: ArenaPlayer):
        return (seat.forfeited, -seat.score, seat.time_ms if seat.time_ms is not None else full_ms)

    ordered = sorted(key(seat) for seat in seats)
    return [ordered.index(key(seat)) + 1 for seat in seats]


def finish_if_due(match_id: int, now: datetime) -> bool:
    """Finish the match when every seat is done or the deadline passed; True when this call finished it."""
    with unit_of_work() as session:
        match = db.session.get(ArenaMatch, match_id)
        if match is None or match.status != "active":
            return False
        if now < as_utc(match.deadline) and session.scalar(
            select(func.count()).select_from(ArenaPlayer).where(ArenaPlayer.match_id == match_id, ArenaPlayer.status == "active")
        ):
            return False
        return finish(match_id, now)


def finish(match_id: int, now: datetime) -> bool:
    """Score the match once: the conditional UPDATE lets exactly one caller through, whoever races.

    Scoring reads the match (from that UPDATE), its seats (locked) and its answers, and writes every seat in
    one statement and the match's outcome in one more; the seats' ORM objects get the written values as
    committed state, so no flush writes them again (see `_seat_outcome`)."""
    with unit_of_work() as session:
        match = session.scalars(update(ArenaMatch).where(ArenaMatch.id == match_id, ArenaMatch.status == "active")
                                .values(status="finished", finished_at=now).returning(ArenaMatch)
                                .execution_options(populate_existing=True)).one_or_none()
        if match is None:
            return False
        seats = _seats(match_id, lock=True)
        full_ms = int((as_utc(match.deadline) - as_utc(match.started_at)).total_seconds() * 1000)
        answers = session.execute(select(ArenaAnswer.user_id, ArenaAnswer.item_id, ArenaAnswer.flagged, ArenaAnswer.label, ArenaAnswer.offset_ms)
                                  .where(ArenaAnswer.match_id == match_id)).all()
        for seat in seats:
            mine = [one for one in answers if one.user_id == seat.user_id]
            result = tally(match, mine)
            time_ms = seat.time_ms
            if seat.status == "active" or time_ms is None:
                time_ms = max((one.offset_ms for one in mine), default=full_ms) if len(mine) == len(match.item_ids) else full_ms
            _seat_outcome(seat, found=result.found, false_alarms=result.false_alarms, score=result.score, time_ms=time_ms,
                          forfeited=seat.forfeited or (not mine and not seat.is_ghost), status="done", finished_at=seat.finished_at or now)
        ranks = _ranks(seats, full_ms)
        winners = [seat for seat, rank in zip(seats, ranks, strict=True) if rank == 1]
        outcome = {"winner_id": winners[0].user_id if len(winners) == 1 and not all(seat.forfeited for seat in seats) else None}
        if match.mode == CLASH_MODE:  # teams of three: the sides' summed scores decide, and no one member wins
            ranks, outcome["winner_id"] = clash_scoring.team_ranks(match, seats, now), None
        set_committed_value(match, "winner_id", outcome["winner_id"])
        reasons = fairplay.flags_for(match, seats, now)
        if reasons:
            outcome.update(flag_state="open", flag_reasons=reasons, rated=False)
        else:
            # The match was active a moment ago and is locked by our UPDATE: nobody settled it yet.
            _apply_settlement(match, seats, ranks, now)
            outcome["settled_at"] = now
        _write_seats(seats)
        session.execute(update(ArenaMatch).where(ArenaMatch.id == match_id).values(**outcome).execution_options(synchronize_session=False))
        for name, value in outcome.items():
            set_committed_value(match, name, value)
        humans = [seat.user_id for seat in seats if not seat.is_ghost]
        winner, rated, mode = match.winner_id, match.rated, match.mode
        won = clash_scoring.winner_ids(match, seats) if mode == CLASH_MODE else [winner] if winner in humans else []
    after_commit(lambda: live.finished(match_id))
    after_commit(lambda: events.match_finished.send(None, match_id=match_id, mode=mode, user_ids=humans, winner_id=winner, rated=rated,
                                                    winner_ids=won, guild_clash=mode == CLASH_MODE, now=now))
    return True


# What scoring writes on a seat: `_seat_outcome` sets them in memory, `_write_seats` stores them in one statement.
SEAT_OUTCOME = ("found", "false_alarms", "score", "time_ms", "forfeited", "status", "finished_at", "rating_before", "rating_after",
                "prize_tokens", "prize_points")


def _seat_outcome(seat: ArenaPlayer, **values) -> None:
    """Set scoring's values on a seat as committed state: `_write_seats` writes them, the flush leaves them alone."""
    for name, value in values.items():
        set_committed_value(seat, name, value)


def _write_seats(seats: list[ArenaPlayer]) -> None:
    """Every seat's outcome in one executemany UPDATE (one round trip), instead of one UPDATE per changed column set."""
    table = ArenaPlayer.__table__
    db.session.execute(update(table).where(table.c.id == bindparam("seat_id")).values({name: bindparam(f"new_{name}") for name in SEAT_OUTCOME}),
                       [{"seat_id": seat.id, **{f"new_{name}": getattr(seat, name) for name in SEAT_OUTCOME}} for seat in seats])


def _apply_settlement(match: ArenaMatch, seats: list[ArenaPlayer], ranks: list[int], now: datetime) -> None:
    """Ratings and prizes in the caller's transaction, on the seats in memory (`_write_seats` stores them). The
    caller makes sure it runs once per match (see `finish` and `_settle`). A guild clash rates and pays its
    two teams instead (`clash_scoring.settle`)."""
    if match.mode == CLASH_MODE:
        clash_scoring.settle(match, seats, ranks, now)
        return
    moves = ratings.rate(match.mode, match.season_id, [(seat.user_id, rank, seat.is_ghost) for seat, rank in zip(seats, ranks, strict=True)], now)
    by_user = {move.user_id: move for move in moves}
    for seat in seats:
        if seat.user_id in by_user:
            _seat_outcome(seat, rating_before=by_user[seat.user_id].before, rating_after=by_user[seat.user_id].after)
    if match.winner_id is not None:
        winner = next(seat for seat in seats if seat.user_id == match.winner_id)
        if not winner.is_ghost:
            humans = sum(1 for seat in seats if not seat.is_ghost)
            prize = prizes.pay_winner(match.id, winner.user_id, match.entry_fee * humans, now)
            _seat_outcome(winner, prize_tokens=prize.tokens, prize_points=prize.points)
    for move in moves:
        if move.new_tier:
            after_commit(lambda move=move: events.arena_tier_reached.send(None, user_id=move.user_id, tier=move.new_tier,
                                                                          season_id=match.season_id, now=now))


def _settle(match: ArenaMatch, seats: list[ArenaPlayer], ranks: list[int], now: datetime) -> None:
    """Ratings and prizes of a match scored earlier, once (guarded by `settled_at`), in the caller's transaction."""
    claimed = db.session.execute(update(ArenaMatch).where(ArenaMatch.id == match.id, ArenaMatch.settled_at.is_(None))
                                 .values(settled_at=now).returning(ArenaMatch.id)).scalar()
    if claimed is None:
        return
    _apply_settlement(match, seats, ranks, now)
    _write_seats(seats)


def clear_flag(match_id: int, *, moderator_id: int, clear: bool, now: datetime) -> bool:
    """A moderator's call on a flagged match: cleared, it is rated and paid now; upheld, it never counts."""
    with unit_of_work():
        if not fairplay.decide(match_id, clear=clear, moderator_id=moderator_id):
            return False
        if clear:
            match = get_match(match_id)
            seats = _seats(match_id, lock=True)
            full_ms = int((as_utc(match.deadline) - as_utc(match.started_at)).total_seconds() * 1000)
            ranks = clash_scoring.team_ranks(match, seats, now) if match.mode == CLASH_MODE else _ranks(seats, full_ms)
            _settle(match, seats, ranks, now)
    return True


def due_match_ids(now: datetime, limit: int = 500) -> list[int]:
    """Active matches past their deadline (the sweeper finishes them if no poll did)."""
    return list(db.session.scalars(select(ArenaMatch.id).where(ArenaMatch.status == "active", ArenaMatch.deadline <= now)
                                   .order_by(ArenaMatch.deadline).limit(limit)))
