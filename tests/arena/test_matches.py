"""Error hunt matches at the service level: items and planted errors, answers and their refusals, scoring,
ratings, prizes, forfeits, ghosts and fair play."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.arena.conftest import NOW, members, play, verified_pack


def test_a_match_gives_both_players_the_same_items_with_real_confusions_planted(ctx, tmp_path):
    from sapien.arena import matches
    from sapien.arena.models import ArenaPlayer

    pack = verified_pack(tmp_path)
    a, b = members(2)
    match = matches.start_match([a, b], NOW)
    assert len(match.item_ids) == 6 and match.pack_id == pack.id
    assert 1 <= len(match.planted) < 6
    for key, wrong in match.planted.items():
        assert wrong != match.truth[key] and match.shown[key] == wrong
        if match.truth[key] == "pos":
            assert wrong == "meh"  # the confusion members really made
    seats = ctx.extensions["sqlalchemy"].session.scalars(select(ArenaPlayer).where(ArenaPlayer.match_id == match.id)).all()
    assert sorted(seat.user_id for seat in seats) == sorted([a, b])
    assert match.deadline - match.started_at == timedelta(seconds=120)


def test_answers_after_the_timer_for_another_player_or_twice_are_refused(ctx, tmp_path):
    from sapien.arena import errors, matches

    verified_pack(tmp_path)
    a, b, outsider = members(3)
    match = matches.start_match([a, b], NOW)
    item = match.item_ids[0]
    with pytest.raises(errors.NotAPlayer):
        matches.answer(match.id, outsider, item, flagged=False, label="", now=NOW)
    with pytest.raises(errors.TimeUp):
        matches.answer(match.id, a, item, flagged=False, label="", now=match.deadline + timedelta(seconds=1))
    assert matches.answer(match.id, a, item, flagged=False, label="", now=NOW + timedelta(seconds=3)) == 1
    with pytest.raises(errors.ArenaError, match="already answered"):
        matches.answer(match.id, a, item, flagged=True, label="neg", now=NOW + timedelta(seconds=4))
    with pytest.raises(errors.ArenaError, match="right label"):
        matches.answer(match.id, a, match.item_ids[1], flagged=True, label="bogus", now=NOW + timedelta(seconds=4))


def test_one_active_match_per_member(ctx, tmp_path):
    from sapien.arena import errors, matches

    verified_pack(tmp_path, items=24)
    a, b, c = members(3)
    matches.start_match([a, b], NOW)
    with pytest.raises(errors.AlreadyInMatch):
        matches.start_match([a, c], NOW)
    assert matches.active_match_id(c) is None


def test_the_better_hunter_wins_gains_rating_and_takes_pot_and_prize(ctx, tmp_path):
    from sapien.arena import matches, prizes
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.ledger.models import LedgerEntry

    verified_pack(tmp_path)
    a, b = members(2)
    for member in (a, b):
        ledger.credit(member, "points", 100, kind="test", key=f"seed:{member}", now=NOW)
    prizes.set_pool(prizes.PoolSettings(budget_tokens=5 * prizes.TOKEN_UNIT, prize_tokens=2 * prizes.TOKEN_UNIT, entry_fee_points=10),
                    actor_id=a, now=NOW)
    match = matches.start_match([a, b], NOW)
    assert ledger.balance(a, "points") == 90
    play(match, a, perfect=True, now=NOW)
    play(match, b, perfect=False, false_alarm=True, now=NOW)
    db.session.expire_all()
    match = matches.get_match(match.id)
    assert match.status == "finished" and match.winner_id == a
    seat_a, seat_b = matches.seat_of(match.id, a), matches.seat_of(match.id, b)
    assert (seat_a.found, seat_a.false_alarms, seat_a.score) == (len(match.planted), 0, len(match.planted))
    assert (seat_b.found, seat_b.false_alarms, seat_b.score) == (0, 1, -1)
    assert seat_a.rating_after > seat_a.rating_before and seat_b.rating_after < seat_b.rating_before
    assert ledger.balance(a, "points") == 110 and ledger.balance(b, "points") == 90
    assert ledger.balance(a, "token") == 2 * prizes.TOKEN_UNIT
    assert prizes.pool().paid_tokens == 2 * prizes.TOKEN_UNIT
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "arena:prize")) == 1


def test_equal_scores_go_to_the_faster_player(ctx, tmp_path):
    from sapien.arena import matches
    from sapien.extensions import db

    verified_pack(tmp_path)
    a, b = members(2)
    match = matches.start_match([a, b], NOW)
    play(match, a, perfect=True, now=NOW, step_seconds=4)
    play(match, b, perfect=True, now=NOW, step_seconds=6)
    db.session.expire_all()
    assert matches.get_match(match.id).winner_id == a


def test_the_prize_pool_never_pays_past_its_budget(ctx, tmp_path):
    from sapien.arena import matches, prizes
    from sapien.ledger import service as ledger

    verified_pack(tmp_path, items=24)
    a, b = members(2)
    prizes.set_pool(prizes.PoolSettings(budget_tokens=3, prize_tokens=2, entry_fee_points=0), actor_id=a, now=NOW)
    for round_ in range(2):
        start = NOW + timedelta(minutes=5 * round_)
        match = matches.start_match([a, b], start)
        play(match, a, perfect=True, now=start)
        play(match, b, perfect=False, now=start)
    assert ledger.balance(a, "token") == 3
    assert prizes.pool().paid_tokens == 3
    with pytest.raises(Exception, match="already paid"):
        prizes.set_pool(prizes.PoolSettings(budget_tokens=1, prize_tokens=2, entry_fee_points=0), actor_id=a, now=NOW)


def test_an_opponent_who_disconnects_forfeits_at_the_deadline(ctx, tmp_path):
    from sapien.arena import live, matches
    from sapien.extensions import db

    verified_pack(tmp_path)
    a, b = members(2)
    match = matches.start_match([a, b], NOW)
    play(match, a, perfect=False, now=NOW)
    assert matches.get_match(match.id).status == "active"  # b may still answer
    assert live.state(match.id, NOW + timedelta(seconds=40)).progress == {a: 6, b: 0}
    assert matches.finish_if_due(match.id, NOW + timedelta(seconds=60)) is False
    assert matches.finish_if_due(match.id, match.deadline) is True
    db.session.expire_all()
    assert matches.get_match(match.id).winner_id == a
    assert matches.seat_of(match.id, b).forfeited
    assert matches.active_match_id(b) is None


def test_leaving_forfeits_and_the_other_player_finishes_the_match(ctx, tmp_path):
    from sapien.arena import matches
    from sapien.extensions import db

    verified_pack(tmp_path)
    a, b = members(2)
    match = matches.start_match([a, b], NOW)
    matches.answer(match.id, b, match.item_ids[0], flagged=False, label="", now=NOW + timedelta(seconds=5))
    matches.leave(match.id, b, NOW + timedelta(seconds=6))
    assert matches.get_match(match.id).status == "active"
    play(match, a, perfect=False, now=NOW + timedelta(seconds=6))
    db.session.expire_all()
    finished = matches.get_match(match.id)
    assert finished.status == "finished" and finished.winner_id == a


def test_rated_play_never_shows_a_member_the_same_item_twice(ctx, tmp_path):
    from sapien.arena import errors, matches

    verified_pack(tmp_path, items=12)
    a, b, c = members(3)
    first = matches.start_match([a, b], NOW)
    play(first, a, perfect=True, now=NOW)
    play(first, b, perfect=True, now=NOW)
    second = matches.start_match([a, c], NOW + timedelta(minutes=5))
    assert not set(first.item_ids) & set(second.item_ids)
    play(second, a, perfect=True, now=NOW + timedelta(minutes=5))
    play(second, c, perfect=True, now=NOW + timedelta(minutes=5))
    with pytest.raises(errors.NotEnoughItems):
        matches.start_match([a, b], NOW + timedelta(minutes=10))


def test_a_lone_member_gets_a_ghost_match_against_a_recorded_run(ctx, tmp_path, config):
    from sapien.arena import live, matches, matchmaking
    from sapien.extensions import db

    config(ARENA_GHOST_AFTER=10)
    verified_pack(tmp_path, items=12)
    a, b, lone = members(3)
    recorded = matches.start_match([a, b], NOW)
    play(recorded, a, perfect=True, now=NOW)
    play(recorded, b, perfect=False, now=NOW)

    later = NOW + timedelta(hours=1)
    assert matchmaking.join(lone, later).status == "waiting"
    assert matchmaking.queue_state(lone, later + timedelta(seconds=5)).status == "waiting"
    state = matchmaking.queue_state(lone, later + timedelta(seconds=11))
    assert state.status == "matched"
    ghost_match = matches.get_match(state.match_id)
    assert ghost_match.ghost_of_match_id == recorded.id and ghost_match.item_ids == recorded.item_ids
    ghost_seat = next(seat for seat in matches._seats(ghost_match.id) if seat.is_ghost)
    # The ghost's progress replays on its own clock: 5 s per answer in the recorded run.
    start = ghost_match.started_at
    assert live.state(ghost_match.id, start + timedelta(seconds=11)).progress[ghost_seat.user_id] == 2
    assert matchmaking.queue_state(lone, later + timedelta(seconds=12)).match_id == ghost_match.id  # reconnecting resumes
    play(ghost_match, lone, perfect=True, now=start, step_seconds=3)
    db.session.expire_all()
    done = matches.get_match(ghost_match.id)
    assert done.status == "finished" and done.winner_id == lone
    seat = matches.seat_of(done.id, lone)
    assert seat.rating_after > seat.rating_before


def test_repeated_pairs_and_impossible_speed_are_flagged_and_unrated_until_cleared(ctx, tmp_path):
    from sapien.arena import fairplay, matches, prizes
    from sapien.extensions import db
    from sapien.ledger import service as ledger

    verified_pack(tmp_path, items=40)
    a, b = members(2)
    prizes.set_pool(prizes.PoolSettings(budget_tokens=100, prize_tokens=5, entry_fee_points=0), actor_id=a, now=NOW)
    fast = matches.start_match([a, b], NOW)
    play(fast, a, perfect=True, now=NOW, step_seconds=0.2)
    play(fast, b, perfect=False, now=NOW)
    db.session.expire_all()
    fast = matches.get_match(fast.id)
    assert fast.flag_state == "open" and fast.flag_reasons == ["impossible_speed"] and not fast.rated
    assert matches.seat_of(fast.id, a).rating_after is None and ledger.balance(a, "token") == 0
    for round_ in (1, 2):
        start = NOW + timedelta(minutes=5 * round_)
        match = matches.start_match([a, b], start)
        play(match, a, perfect=True, now=start)
        play(match, b, perfect=False, now=start)
    db.session.expire_all()
    assert "repeat_pairing" in matches.get_match(match.id).flag_reasons
    assert {one.id for one in fairplay.open_flags()} == {fast.id, match.id}

    assert matches.clear_flag(fast.id, moderator_id=b, clear=True, now=NOW + timedelta(hours=1))
    assert not matches.clear_flag(fast.id, moderator_id=b, clear=True, now=NOW + timedelta(hours=1))
    assert matches.clear_flag(match.id, moderator_id=b, clear=False, now=NOW + timedelta(hours=1))
    db.session.expire_all()
    # The second meeting counted (5 tokens); the flagged first one pays once cleared, the third never.
    assert matches.seat_of(fast.id, a).rating_after is not None and ledger.balance(a, "token") == 10
    assert matches.seat_of(match.id, a).rating_after is None
    assert fairplay.open_flags() == []


def test_two_members_sharing_a_device_are_flagged_and_a_stakers_prize_is_scaled(ctx, tmp_path):
    from sapien.arena import matches, prizes
    from sapien.economy import staking
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.moderation.signals import record_signal

    verified_pack(tmp_path)
    a, b, c = members(3)
    prizes.set_pool(prizes.PoolSettings(budget_tokens=100 * prizes.TOKEN_UNIT, prize_tokens=prizes.TOKEN_UNIT, entry_fee_points=0),
                    actor_id=a, now=NOW)
    for member in (a, b):  # one person, two accounts: the same device
        record_signal(member, "login", "198.51.100.4", "Firefox", "one-device", NOW)
    shared = matches.start_match([a, b], NOW)
    play(shared, a, perfect=True, now=NOW)
    play(shared, b, perfect=False, now=NOW)
    db.session.expire_all()
    assert matches.get_match(shared.id).flag_reasons == ["shared_identity"] and ledger.balance(a, "token") == 0

    # A member staked for a year wins 1.50× the prize, as on every reward.
    ledger.credit(c, "token", 200 * prizes.TOKEN_UNIT, kind="test", key="seed:c", now=NOW)
    staking.stake(c, 100 * prizes.TOKEN_UNIT, 12, now=NOW)
    later = NOW + timedelta(minutes=10)
    match = matches.start_match([c, b], later)
    play(match, c, perfect=True, now=later)
    play(match, b, perfect=False, now=later)
    assert ledger.balance(c, "token") == 100 * prizes.TOKEN_UNIT + prizes.TOKEN_UNIT * 3 // 2


def test_a_new_season_soft_resets_ratings(ctx, tmp_path):
    from sapien.arena import matches, ratings

    verified_pack(tmp_path)
    a, b = members(2)
    match = matches.start_match([a, b], NOW)
    play(match, a, perfect=True, now=NOW)
    play(match, b, perfect=False, now=NOW)
    season = ratings.current_season(NOW)
    before = ratings.standing(a, "error_hunt", season)
    board = ratings.season_board(season.id, "error_hunt")
    assert [row.user_id for row in board] == [a, b]
    fresh = ratings.start_season("Winter", NOW + timedelta(days=30))
    after = ratings.standing(a, "error_hunt", fresh)
    assert after.mu == pytest.approx(25 + (before.mu - 25) / 2)
    assert after.sigma == pytest.approx(min(before.sigma + 2, 25 / 3))
    assert ratings.season_board(fresh.id, "error_hunt") == []


def test_reaching_a_tier_awards_its_badge(ctx, tmp_path):
    from sapien.arena import ratings
    from sapien.progression.awards import member_badges

    a, b = members(2)
    season = ratings.current_season(NOW)
    from sapien import events
    from sapien.database import after_commit, unit_of_work

    with unit_of_work():
        moves = []
        for round_ in range(8):
            moves += ratings.rate("error_hunt", season, [(a, 1, False), (b, 2, True)], NOW + timedelta(minutes=round_))
    reached = [move.new_tier for move in moves if move.user_id == a and move.new_tier]
    assert reached and reached[0] == "silver"
    for tier in reached:
        after_commit(lambda tier=tier: events.arena_tier_reached.send(None, user_id=a, tier=tier, season_id=season.id, now=NOW))
    assert "arena-silver" in {held.badge.slug for held in member_badges(a)}


def test_the_sweep_job_finishes_matches_nobody_polled_and_runs_twice_safely(app, tmp_path):
    from jobs.arena import finish_due_matches
    from sapien.arena import matches
    from sapien.database import utcnow
    from sapien.extensions import db

    with app.test_request_context():
        verified_pack(tmp_path)
        a, b = members(2)
        past = utcnow() - timedelta(minutes=10)
        match = matches.start_match([a, b], past)  # both players walked away long ago
        match_id = match.id
        db.session.remove()
    with app.app_context():
        assert finish_due_matches() == 1
    with app.app_context():
        assert finish_due_matches() == 0
    with app.test_request_context():
        done = matches.get_match(match_id)
        assert done.status == "finished" and done.winner_id is None
        assert matches.active_match_id(a) is None and matches.active_match_id(b) is None


def test_an_accuracy_duel_scores_gold_with_partial_credit_and_sends_live_answers_to_quality(ctx, tmp_path):
    from sapien.arena import credit, errors, matches
    from sapien.extensions import db
    from sapien.labeling.models import Submission
    from tests.labeling.conftest import make_pack

    make_pack(tmp_path, items=3, gold=6)
    a, b = members(2)
    match = matches.start_match([a, b], NOW, mode="accuracy_duel")
    gold = [item_id for item_id in match.item_ids if str(item_id) in match.truth]
    live = [item_id for item_id in match.item_ids if str(item_id) not in match.truth]
    assert match.mode == "accuracy_duel" and len(gold) == 5 and len(live) == 1
    with pytest.raises(errors.ArenaError, match="pack's labels"):
        matches.answer(match.id, a, gold[0], flagged=False, label="bogus", now=NOW + timedelta(seconds=1))
    for step, item_id in enumerate(match.item_ids):
        when = NOW + timedelta(seconds=3 * step + 3)
        matches.answer(match.id, a, item_id, flagged=False, label=match.truth.get(str(item_id), "pos"), now=when)
        matches.answer(match.id, b, item_id, flagged=False, label="neg" if step % 2 else match.truth.get(str(item_id), "pos"), now=when)
    db.session.expire_all()
    done = matches.get_match(match.id)
    seat_a, seat_b = matches.seat_of(match.id, a), matches.seat_of(match.id, b)
    assert done.status == "finished" and done.winner_id == a
    assert (seat_a.score, seat_a.found) == (100, 5)
    assert 0 < seat_b.score < 100 and seat_b.found < 5
    live_labels = db.session.execute(select(Submission.user_id, Submission.answer).where(Submission.item_id == live[0])).all()
    assert sorted(user_id for user_id, _answer in live_labels) == sorted([a, b])  # ordinary labels for quality
    # Partial credit per task type.
    assert credit.credit("text_classification", {"labels": ["a", "b"]}, {"labels": ["a"]}) == 0.5
    assert credit.credit("bounding_boxes", {"boxes": [{"x": 0, "y": 0, "w": 10, "h": 10, "label": "c"}]},
                         {"boxes": [{"x": 5, "y": 0, "w": 10, "h": 10, "label": "c"}]}) == pytest.approx(50 / 150)
    assert credit.credit("audio_transcription", {"text": "hello wrld"}, {"text": "Hello world"}) == pytest.approx(1 - 1 / 11)
