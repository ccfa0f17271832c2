"""Rated play never shows a member an item twice, in any mode: not an item met in an earlier match (live, duel or
ghost), nor one given to them in ordinary labeling; when the pool runs dry the member reads why. And scoring a
match stays a handful of SQL statements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from tests.arena.conftest import NOW, members, play, verified_pack


def _labeled(user_id: int, item_ids) -> None:
    """The member was given these items in ordinary labeling (a submitted lease)."""
    from sapien.database import unit_of_work
    from sapien.labeling.models import Item, Lease

    with unit_of_work() as session:
        for item_id in item_ids:
            pack_id = session.scalar(select(Item.pack_id).where(Item.id == item_id))
            session.add(Lease(item_id=item_id, pack_id=pack_id, user_id=user_id, status="submitted", created_at=NOW, expires_at=NOW))


def test_an_error_hunt_leaves_out_items_the_member_labeled_and_says_why_when_none_are_left(ctx, tmp_path):
    from sapien.arena import errors, matches
    from sapien.extensions import db
    from sapien.labeling.models import Item

    pack = verified_pack(tmp_path, items=12, confusions=False)
    a, b, c = members(3)
    labeled = list(db.session.scalars(select(Item.id).where(Item.pack_id == pack.id).order_by(Item.id).limit(5)))
    _labeled(a, labeled)
    first = matches.start_match([a, b], NOW)
    assert not set(first.item_ids) & set(labeled)
    play(first, a, perfect=True, now=NOW)
    play(first, b, perfect=False, now=NOW)
    # 12 items: 5 labeled by a, 6 shown to a, one left: not enough for a second match with a.
    with pytest.raises(errors.NotEnoughItems, match="never shows you an item you met before"):
        matches.start_match([a, c], NOW + timedelta(minutes=5))
    assert matches.active_match_id(a) is None and matches.active_match_id(c) is None


def test_an_accuracy_duel_never_repeats_a_gold_item_nor_one_the_member_labeled_or_stumped(ctx, tmp_path):
    from sapien.arena import errors, matches
    from sapien.arena.models import ArenaStump
    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.labeling.models import Item
    from tests.labeling.conftest import make_pack

    pack = make_pack(tmp_path, items=4, gold=13)
    a, b, c, d, e = members(5)
    gold = list(db.session.scalars(select(Item.id).where(Item.pack_id == pack.id, Item.is_gold.is_(True)).order_by(Item.id)))
    _labeled(a, gold[:1])  # a labeled one gold item and was told its answer
    with unit_of_work() as session:  # a wrote one stump that became gold, and confirmed another's
        for item_id, author, votes in ((gold[1], a, {str(e): "pos"}), (gold[2], e, {str(a): "pos"})):
            session.add(ArenaStump(pack_id=pack.id, author_id=author, text="Great stuff.", label="pos", model_label="neg", status="confirmed",
                                   votes=votes, item_id=item_id, created_at=NOW, decided_at=NOW))
    shown: set[int] = set()
    for opponent, minutes in ((b, 0), (c, 10)):
        duel = matches.start_match([a, opponent], NOW + timedelta(minutes=minutes), mode="accuracy_duel")
        assert not set(gold[:3]) & set(duel.item_ids) and not shown & set(duel.item_ids)
        shown |= set(duel.item_ids)
        for step, item_id in enumerate(duel.item_ids):
            for player in (a, opponent):
                matches.answer(duel.id, player, item_id, flagged=False, label="pos", now=NOW + timedelta(minutes=minutes, seconds=3 * step + 3))
        assert matches.get_match(duel.id).status == "finished"
    # 13 gold: one labeled, two stumped, ten shown in two duels. None left for a.
    with pytest.raises(errors.NotEnoughItems, match="new gold items"):
        matches.start_match([a, d], NOW + timedelta(minutes=20), mode="accuracy_duel")


def test_a_ghost_replays_only_a_run_of_items_the_member_never_met_else_they_keep_waiting_and_are_told(ctx, tmp_path, config):
    from sapien.arena import matches, matchmaking

    config(ARENA_GHOST_AFTER=10)
    verified_pack(tmp_path, items=12, confusions=False)
    a, b, d, e, lone = members(5)
    older = matches.start_match([a, b], NOW)
    play(older, a, perfect=True, now=NOW)
    play(older, b, perfect=False, now=NOW)
    _labeled(d, older.item_ids)  # so the newer match is on the other six items
    newer = matches.start_match([d, e], NOW + timedelta(minutes=5))
    assert not set(older.item_ids) & set(newer.item_ids)
    play(newer, d, perfect=True, now=NOW + timedelta(minutes=5))
    play(newer, e, perfect=False, now=NOW + timedelta(minutes=5))
    _labeled(lone, newer.item_ids[:1])  # the newer (otherwise first) ghost would replay an item lone labeled

    later = NOW + timedelta(hours=1)
    assert matchmaking.join(lone, later).status == "waiting"
    state = matchmaking.queue_state(lone, later + timedelta(seconds=11))
    assert state.status == "matched"
    ghost = matches.get_match(state.match_id)
    assert ghost.ghost_of_match_id == older.id and ghost.item_ids == older.item_ids
    play(ghost, lone, perfect=True, now=ghost.started_at, step_seconds=3)
    assert matches.get_match(ghost.id).status == "finished"

    # Every recorded run now holds an item lone met: no ghost, a clear message, still in the queue.
    again = later + timedelta(minutes=10)
    assert matchmaking.join(lone, again).status == "waiting"
    state = matchmaking.queue_state(lone, again + timedelta(seconds=11))
    assert state.status == "waiting" and "never replays items you met before" in state.message
    assert matches.active_match_id(lone) is None
    assert matchmaking.queue_state(lone, again + timedelta(seconds=12)).status == "waiting"  # requeued, not dropped


def test_a_selection_that_would_repeat_an_item_is_refused_by_the_seen_record(ctx, tmp_path, monkeypatch):
    """Whatever a mode's selection does, opening a match records the items shown and refuses one shown before."""
    from sapien.arena import errors, items, matches

    verified_pack(tmp_path, items=12, confusions=False)
    a, b, c = members(3)
    first = matches.start_match([a, b], NOW)
    play(first, a, perfect=True, now=NOW)
    play(first, b, perfect=True, now=NOW)
    replay = items.HuntSet(first.pack_id, list(first.item_ids), dict(first.truth), dict(first.shown), dict(first.planted))
    monkeypatch.setattr(items, "choose_hunt", lambda *args, **kwargs: replay)
    with pytest.raises(errors.NotEnoughItems):
        matches.start_match([a, c], NOW + timedelta(minutes=5))
    assert matches.active_match_id(a) is None and matches.active_match_id(c) is None


MAX_SCORING_STATEMENTS = 12


def test_scoring_a_finished_error_hunt_runs_at_most_a_dozen_statements(ctx, tmp_path):
    """Finish and settle in one transaction: the match (its UPDATE), seats, answers, fair play (3), ratings (3),
    the prize pool, the seats' and the match's outcome. Two rounds: first ratings of the season, then existing ones."""
    from sapien.arena import matches
    from sapien.extensions import db

    verified_pack(tmp_path, items=12, confusions=False)
    a, b = members(2)
    engine = db.engine
    for round_number in range(2):
        start = NOW + timedelta(minutes=10 * round_number)
        match = matches.start_match([a, b], start)
        match_id, deadline = match.id, match.deadline
        play(match, a, perfect=True, now=start)
        for item_id in match.item_ids[:-1]:
            matches.answer(match_id, b, item_id, flagged=False, label="", now=start + timedelta(seconds=40))
        statements: list[str] = []
        committed: list[bool] = []

        def count(conn, cursor, statement, parameters, context, executemany, statements=statements, committed=committed):
            if not committed:  # what reacts after the commit (badges for a new tier, say) is not scoring
                statements.append(statement)

        def commit(conn, committed=committed):
            committed.append(True)

        event.listen(engine, "before_cursor_execute", count)
        event.listen(engine, "commit", commit)
        try:
            assert matches.finish(match_id, deadline)
        finally:
            event.remove(engine, "before_cursor_execute", count)
            event.remove(engine, "commit", commit)
        assert committed
        assert len(statements) <= MAX_SCORING_STATEMENTS, "\n".join(statements)
        db.session.expire_all()
        seat_a, seat_b = matches.seat_of(match_id, a), matches.seat_of(match_id, b)
        assert matches.get_match(match_id).winner_id == a and seat_a.score > 0 and seat_b.forfeited is False
        assert seat_a.rating_after > seat_a.rating_before and seat_b.rating_after is not None
