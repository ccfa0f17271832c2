"""The Redis queue and the races the database settles (PostgreSQL): double joins, two matches at once, two
results posted at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.arena.conftest import NOW, members, play, verified_pack


def test_joining_twice_is_one_entry_and_two_close_members_are_paired(ctx, tmp_path):
    from sapien.arena import matches, matchmaking

    verified_pack(tmp_path)
    a, b = members(2)
    assert matchmaking.join(a, NOW).status == "waiting"
    assert matchmaking.join(a, NOW + timedelta(seconds=1)).status == "waiting"  # no pairing with oneself
    state = matchmaking.join(b, NOW + timedelta(seconds=2))
    assert state.status == "matched"
    assert matches.active_match_id(a) == matches.active_match_id(b) == state.match_id
    assert matchmaking.queue_state(a, NOW + timedelta(seconds=3)).match_id == state.match_id
    assert matchmaking.join(a, NOW + timedelta(seconds=3)).match_id == state.match_id  # in a match: not queued again


def test_a_member_who_cannot_pay_the_entry_fee_is_not_queued(ctx, tmp_path):
    from sapien.arena import errors, matchmaking, prizes
    from sapien.ledger import service as ledger

    a, b = members(2)
    prizes.set_pool(prizes.PoolSettings(budget_tokens=0, prize_tokens=0, entry_fee_points=10), actor_id=a, now=NOW)
    with pytest.raises(errors.ArenaError, match="10 points"):
        matchmaking.join(a, NOW)
    assert matchmaking.queue_state(a, NOW).status == "idle"
    ledger.credit(b, "points", 10, kind="test", key="seed:b", now=NOW)
    assert matchmaking.join(b, NOW).status == "waiting"


def test_the_window_widens_with_the_wait(ctx, tmp_path):
    from sapien.arena import matchmaking

    a, b = members(2)
    assert matchmaking.pair(a, 25.0, NOW, join=True)[0] == "waiting"
    assert matchmaking.pair(b, 35.0, NOW, join=True)[0] == "waiting"  # 10 apart: too far at first
    assert matchmaking.pair(b, 0, NOW + timedelta(seconds=10), join=False)[0] == "waiting"  # window 2 + 0.5 × 10 = 7
    assert matchmaking.pair(b, 0, NOW + timedelta(seconds=17), join=False) == ("paired", str(a))
    assert matchmaking.pair(a, 0, NOW + timedelta(seconds=17), join=False)[0] == "gone"
    assert not matchmaking.leave_queue(a)


@pytest.mark.postgres_only
def test_members_joining_at_once_end_up_in_one_match_each(app, tmp_path):
    from sapien.arena import matchmaking
    from sapien.arena.models import ArenaPlayer
    from sapien.extensions import db

    with app.test_request_context():
        verified_pack(tmp_path, items=60)
        ids = members(6)
        db.session.remove()
    barrier = threading.Barrier(len(ids) * 2)
    errors = []

    def join(user_id: int) -> None:
        with app.test_request_context():
            try:
                barrier.wait(timeout=10)
                matchmaking.join(user_id, NOW)
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=join, args=(user_id,)) for user_id in ids * 2]  # everyone joins twice at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with app.test_request_context():
        for _ in range(3):  # whoever is still waiting polls once
            for user_id in ids:
                matchmaking.queue_state(user_id, NOW + timedelta(seconds=1))
        seats = db.session.execute(select(ArenaPlayer.user_id, func.count()).group_by(ArenaPlayer.user_id)).all()
        assert sorted(user_id for user_id, _n in seats) == sorted(ids)
        assert all(n == 1 for _user, n in seats)


@pytest.mark.postgres_only
def test_two_results_posted_at_once_give_one_result_and_one_payout(app, tmp_path):
    from sapien.arena import matches, prizes
    from sapien.extensions import db
    from sapien.ledger.models import LedgerEntry

    with app.test_request_context():
        verified_pack(tmp_path)
        a, b = members(2)
        prizes.set_pool(prizes.PoolSettings(budget_tokens=100, prize_tokens=7, entry_fee_points=0), actor_id=a, now=NOW)
        match = matches.start_match([a, b], NOW)
        play(match, a, perfect=True, now=NOW)
        # b's last answer and the deadline sweep race: both try to finish the match.
        for item_id in match.item_ids[:-1]:
            matches.answer(match.id, b, item_id, flagged=False, label="", now=NOW + timedelta(seconds=50))
        last_item, match_id, deadline = match.item_ids[-1], match.id, match.deadline
        db.session.remove()
    barrier = threading.Barrier(3)
    outcomes, errors = [], []

    def run(action) -> None:
        with app.test_request_context():
            try:
                barrier.wait(timeout=10)
                outcomes.append(action())
            except Exception as error:  # noqa: BLE001
                errors.append(error)
            finally:
                db.session.remove()

    actions = [
        lambda: matches.finish(match_id, deadline),
        lambda: matches.finish(match_id, deadline),
        lambda: matches.finish_if_due(match_id, deadline),
    ]
    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(outcomes) == [False, False, True]
    with app.test_request_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "arena:prize")) == 1
        assert prizes.pool().paid_tokens == 7
        from sapien.arena.models import ArenaRating

        assert db.session.scalar(select(ArenaRating.matches).where(ArenaRating.user_id == a)) == 1
        with pytest.raises(Exception, match="over"):
            matches.answer(match_id, b, last_item, flagged=False, label="", now=NOW + timedelta(seconds=55))


def test_a_member_restricted_from_the_arena_is_told_why_and_not_queued(ctx, tmp_path):
    from sapien.accounts.models import User
    from sapien.arena import errors, matchmaking
    from sapien.database import unit_of_work
    from sapien.extensions import db
    from sapien.moderation.safety.decisions import DecisionDraft, decide

    moderator, cheat = members(2)
    with unit_of_work():
        db.session.get(User, moderator).role = "moderator"
    decide(moderator, cheat, DecisionDraft("restrict", "duel boosting", scope="arena", days=7), NOW)
    with pytest.raises(errors.ArenaError, match="duel boosting"):
        matchmaking.join(cheat, NOW + timedelta(minutes=1))
    assert matchmaking.queue_state(cheat, NOW + timedelta(minutes=1)).status == "idle"
