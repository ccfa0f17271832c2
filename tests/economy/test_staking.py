"""Staking: tiers and multipliers, locks and cooldowns, slashes, priority access and bad input."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from sapien.economy import staking
from sapien.economy.errors import EconomyError
from sapien.economy.models import StakePosition
from sapien.economy.parameters import set_parameter
from sapien.economy.treasury import treasury_id
from sapien.extensions import db
from sapien.labeling import leases, submissions
from sapien.labeling.errors import NoWorkLeft
from sapien.ledger import service as ledger
from sapien.moderation.models import AuditLog
from sapien.notifications.models import Notification
from tests.conftest import verify_and_settle

from .conftest import NOW, make_pack, make_user
from .helpers import T, give


def _positions_sum(user_id: int) -> int:
    return sum(p.amount for p in db.session.scalars(select(StakePosition).where(
        StakePosition.user_id == user_id, StakePosition.status.in_(("staked", "cooling")))))


def test_tiers_need_their_lock_and_amount_and_give_their_multiplier(ctx):
    ana = make_user()
    give(ana, "token", 2 * T)
    assert staking.multiplier_of(ana) == 10_000
    staking.stake(ana, T // 10, 1, now=NOW)  # 0.1 token for a month: the first tier
    assert staking.multiplier_of(ana) == 10_500
    staking.stake(ana, T // 5, 3, now=NOW)  # 0.3 locked ≥ 3 months? only 0.2 is: still the first tier
    assert staking.multiplier_of(ana) == 10_500
    staking.stake(ana, T, 12, now=NOW)  # a token for a year: the top tier
    assert staking.multiplier_of(ana) == 15_000
    assert ledger.balance(ana, "token") == 2 * T - T // 10 - T // 5 - T
    assert ledger.balance(ana, "stake") == _positions_sum(ana) == T // 10 + T // 5 + T
    summary = staking.stake_summary(ana)
    assert summary.multiplier == "1.50" and summary.tier.months == 12


def test_bad_stakes_are_refused_and_move_nothing(ctx):
    ana = make_user()
    give(ana, "token", 2 * T)
    for amount, months, message in ((0, 1, "above zero"), (-5, 1, "above zero"), (T // 10, 2, "lock periods"),
                                    (3 * T, 1, "You have 2 tokens to stake")):
        with pytest.raises(EconomyError, match=message):
            staking.stake(ana, amount, months, now=NOW)
    assert ledger.balance(ana, "token") == 2 * T and ledger.balance(ana, "stake") == 0
    assert db.session.scalar(select(StakePosition.id)) is None


@pytest.mark.postgres_only
def test_two_stakes_at_once_cannot_stake_more_than_the_balance(app):
    with app.test_request_context():
        ana = make_user()
        give(ana, "token", T)
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def stake_all() -> None:
        with app.test_request_context():
            barrier.wait(timeout=10)
            try:
                staking.stake(ana, 3 * T // 4, 1, now=NOW)
                outcomes.append("staked")
            except EconomyError:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=stake_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["refused", "staked"]
    with app.app_context():
        assert ledger.balance(ana, "token") == T // 4 and ledger.balance(ana, "stake") == 3 * T // 4 == _positions_sum(ana)
        assert len(db.session.scalars(select(StakePosition)).all()) == 1


def test_unstaking_waits_for_the_lock_then_the_cooldown(ctx):
    ana, bob = make_user(), make_user()
    give(ana, "token", T)
    position = staking.stake(ana, T // 2, 1, now=NOW)
    with pytest.raises(EconomyError, match="locked until"):
        staking.request_unstake(ana, position.id, now=NOW + timedelta(days=29))
    with pytest.raises(EconomyError, match="does not exist"):  # someone else's stake
        staking.request_unstake(bob, position.id, now=NOW + timedelta(days=31))
    staking.request_unstake(ana, position.id, now=NOW + timedelta(days=31))
    assert staking.multiplier_of(ana) == 10_000  # cooling stake counts for no tier
    with pytest.raises(EconomyError, match="cooldown ends"):
        staking.collect_unstaked(ana, position.id, now=NOW + timedelta(days=37))
    staking.collect_unstaked(ana, position.id, now=NOW + timedelta(days=38))
    assert ledger.balance(ana, "token") == T and ledger.balance(ana, "stake") == 0
    with pytest.raises(EconomyError):
        staking.collect_unstaked(ana, position.id, now=NOW + timedelta(days=39))  # once only
    assert ledger.balance(ana, "token") == T


def test_slashes_take_their_severity_s_share_to_the_treasury_audited_and_told(ctx):
    ana, moderator = make_user(), make_user(role="moderator")
    give(ana, "token", T)
    staking.stake(ana, T // 2, 1, now=NOW)
    staking.stake(ana, T // 4, 3, now=NOW)
    with pytest.raises(EconomyError, match="needs a reason"):
        staking.slash(ana, "moderate", reason="  ", actor_id=moderator, now=NOW)
    warning = staking.slash(ana, "warning", reason="Copied answers", actor_id=moderator, now=NOW)
    assert warning.amount == 0 and ledger.balance(ana, "stake") == 3 * T // 4
    moderate = staking.slash(ana, "moderate", reason="Bot answers, confirmed", actor_id=moderator, now=NOW + timedelta(hours=1))
    assert moderate.amount == 3 * T // 16
    assert ledger.balance(ana, "stake") == 3 * T // 4 - 3 * T // 16 == _positions_sum(ana)
    assert ledger.balance(treasury_id(NOW), "token") == 3 * T // 16
    staking.slash(ana, "severe", reason="Sybil ring", actor_id=moderator, now=NOW + timedelta(hours=2))
    assert ledger.balance(ana, "stake") == 0 == _positions_sum(ana)
    actions = [row.action for row in db.session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["economy.slash.warning", "economy.slash.moderate", "economy.slash.severe"]
    kinds = sorted(n.kind for n in db.session.scalars(select(Notification).where(Notification.user_id == ana)))
    assert kinds == ["stake_slashed", "stake_slashed", "stake_warning"]
    assert [s.severity for s in staking.stake_summary(ana).slashes] == ["severe", "moderate", "warning"]


def test_the_multiplier_applies_to_the_next_reward_and_its_reversal(ctx, tmp_path):
    pack = make_pack(tmp_path, items=2, reward_points=100, reward_xp=10, labels_per_item=1)
    ana = make_user()
    give(ana, "token", T)
    staking.stake(ana, T // 10, 1, now=NOW)
    lease = leases.lease_next_item(ana, pack.id, NOW)
    result = submissions.submit_answer(ana, lease.id, {"labels": ["pos"]}, now=NOW + timedelta(seconds=5))
    assert result.points == 100  # pending: the multiplier applies when it is paid
    verify_and_settle(pack_id=pack.id)
    assert ledger.balance(ana, "points") == 105
    submission = db.session.get(submissions.Submission, result.submission_id)
    assert (submission.paid_points, submission.stake_multiplier_bp) == (105, 10_500)
    notice = db.session.scalar(select(Notification).where(Notification.user_id == ana, Notification.kind.like("answer%")))
    assert notice.kind == "answer_verified_points_boosted" and notice.params["multiplier"] == "1.05"
    submissions.reject_submission(result.submission_id, reason="wrong", now=NOW + timedelta(minutes=5))
    assert ledger.balance(ana, "points") == 0  # the reversal takes back what was paid, bonus included


def test_staked_members_are_served_first_when_items_are_scarce(ctx, tmp_path):
    pack = make_pack(tmp_path, items=3, labels_per_item=1)
    plain, staker = make_user(), make_user()
    give(staker, "token", T)
    staking.stake(staker, T // 10, 1, now=NOW)
    set_parameter("staking.priority_reserve_items", 2, actor_id=None, reason="Reward stakers", now=NOW)

    assert leases.lease_next_item(plain, pack.id, NOW) is not None  # 3 open items, 2 reserved: not scarce yet
    set_parameter("staking.priority_reserve_items", 3, actor_id=None, reason="Reward stakers more", now=NOW)
    with pytest.raises(NoWorkLeft, match="staked members are served first"):
        leases.lease_next_item(make_user(), pack.id, NOW + timedelta(seconds=2))  # now every open item is for stakers
    assert leases.lease_next_item(staker, pack.id, NOW + timedelta(seconds=3)) is not None
