"""Conversion: once per member per epoch, at the current rate, with the auto-staked share; the job twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from jobs.economy import convert_epoch
from sapien.economy import conversion, staking
from sapien.economy.errors import EconomyError
from sapien.economy.models import Conversion, ConversionEpoch, StakePosition
from sapien.economy.parameters import set_parameter
from sapien.extensions import db
from sapien.ledger import service as ledger

from .conftest import NOW, make_user
from .helpers import T, give


def test_a_member_converts_now_once_per_epoch_with_a_fifth_staked(ctx):
    ana = make_user()
    give(ana, "points", 2000)
    outlook = conversion.outlook(ana, NOW)
    assert (outlook.points, outlook.tokens, outlook.staked) == (2000, T // 5, T // 25)
    assert outlook.epoch.number == 1 and outlook.epoch.ends_at > NOW

    made = conversion.convert_member(ana, now=NOW)
    assert (made.points, made.tokens, made.staked, made.requested) == (2000, T // 5, T // 25, True)
    assert ledger.balance(ana, "token") == T // 5 - T // 25 and ledger.balance(ana, "stake") == T // 25
    assert ledger.balance(ana, "points") == 2000  # points stay the member's score
    auto = db.session.scalar(select(StakePosition).where(StakePosition.user_id == ana))
    assert (auto.source, auto.lock_months, auto.amount) == ("auto", 1, T // 25)

    give(ana, "points", 1000)
    with pytest.raises(EconomyError, match="converted in this epoch already"):
        conversion.convert_member(ana, now=NOW + timedelta(minutes=1))
    assert conversion.outlook(ana, NOW).points == 1000  # what waits for the next epoch


def test_nothing_to_convert_is_a_clear_refusal(ctx):
    ana = make_user()
    with pytest.raises(EconomyError, match="no points to convert"):
        conversion.convert_member(ana, now=NOW)
    assert db.session.scalar(select(Conversion.id)) is None


def test_the_epoch_job_converts_everyone_else_once_at_the_rate_of_the_day_and_reports(app):
    with app.test_request_context():
        ana, bob, cyd = make_user(), make_user(), make_user()
        for member, points in ((ana, 1000), (bob, 3000), (cyd, 500)):
            give(member, "points", points)
        epoch = conversion.current_epoch(NOW)
        conversion.convert_member(cyd, now=NOW)  # cyd asked during the epoch
        set_parameter("conversion.tokens_per_1000_points", T // 5, actor_id=None, reason="Vote", now=NOW)
        epoch_id, number, ends_at = epoch.id, epoch.number, epoch.ends_at
        with pytest.raises(EconomyError, match="not ended"):
            conversion.close_epoch(epoch_id, now=NOW)
        db.session.remove()

    import sapien.economy.conversion as module

    saved = module.utcnow
    module.utcnow = lambda: ends_at + timedelta(minutes=1)
    try:
        with app.app_context():
            assert [work.job_id for work in module._pending_conversions()] == [f"economy-convert-epoch-{number}"]
        with app.app_context():
            first, second = convert_epoch(epoch_id), convert_epoch(epoch_id)
    finally:
        module.utcnow = saved
    assert first == second == {"epoch": number, "members": 3, "points": 4500, "skipped": 0}
    with app.app_context():
        assert ledger.balance(ana, "token") + ledger.balance(ana, "stake") == T // 5
        assert ledger.balance(bob, "token") + ledger.balance(bob, "stake") == 3 * T // 5
        assert ledger.balance(cyd, "token") + ledger.balance(cyd, "stake") == T // 20  # at the old rate, when asked
        closed = db.session.get(ConversionEpoch, epoch_id)
        assert closed.status == "closed" and int(closed.tokens) == T // 5 + 3 * T // 5 + T // 20
        following = db.session.scalar(select(ConversionEpoch).where(ConversionEpoch.number == number + 1))
        assert following.status == "open"  # the job opened the next epoch for members


@pytest.mark.postgres_only
def test_two_convert_requests_at_once_convert_once(app):
    with app.test_request_context():
        ana = make_user()
        give(ana, "points", 1000)
        conversion.current_epoch(NOW)
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def convert() -> None:
        with app.test_request_context():
            barrier.wait(timeout=10)
            try:
                conversion.convert_member(ana, now=NOW)
                outcomes.append("converted")
            except EconomyError:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=convert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["converted", "refused"]
    with app.app_context():
        assert ledger.balance(ana, "token") + ledger.balance(ana, "stake") == T // 10
        assert staking.stake_summary(ana).staked == T // 50


@pytest.mark.postgres_only
def test_the_close_converts_ranges_side_by_side_each_member_once(app):
    """Small ranges on two connections at once, and a member who converted during the epoch: every other
    member converts once, the report counts each once, and a rerun changes nothing."""
    with app.test_request_context():
        members = [make_user() for _ in range(7)]
        for number, member in enumerate(members, start=1):
            give(member, "points", 1000 * number)
        epoch = conversion.current_epoch(NOW)
        conversion.convert_member(members[3], now=NOW)
        epoch_id, ends_at = epoch.id, epoch.ends_at
        db.session.remove()
    with app.app_context():
        first = conversion.close_epoch(epoch_id, now=ends_at + timedelta(minutes=1), chunk=2, workers=2)
        again = conversion.close_epoch(epoch_id, now=ends_at + timedelta(minutes=2), chunk=2, workers=2)
        assert first == again and first.members == 7 and first.points == 1000 * sum(range(1, 8))
        for number, member in enumerate(members, start=1):
            assert ledger.balance(member, "token") + ledger.balance(member, "stake") == number * T // 10
            assert db.session.scalar(select(func.count()).select_from(StakePosition).where(StakePosition.user_id == member)) == 1
