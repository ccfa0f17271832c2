"""Revenue share: the split by the shares, weights, the remainder, statements, and a payment recorded twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sapien.economy import revenue, staking
from sapien.economy.errors import EconomyError
from sapien.economy.models import RevenuePayment
from sapien.economy.treasury import treasury_id
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT
from sapien.labeling import leases, submissions
from sapien.labeling.models import Campaign
from sapien.ledger import service as ledger
from sapien.ledger.models import LedgerEntry
from tests.conftest import verify_and_settle

from .conftest import NOW, make_pack, make_user
from .helpers import T, give


def _label(member: int, pack_id: int, at) -> None:
    lease = leases.lease_next_item(member, pack_id, at)
    submissions.submit_answer(member, lease.id, {"labels": ["pos"]}, now=at + timedelta(seconds=1))


def _campaign_with_work(tmp_path, kind="enterprise", **settings):
    pack = make_pack(tmp_path, kind=kind, items=3, labels_per_item=1, **settings)
    ana, bob = make_user(), make_user()
    _label(ana, pack.id, NOW)
    _label(ana, pack.id, NOW + timedelta(seconds=10))
    _label(bob, pack.id, NOW + timedelta(seconds=20))
    verify_and_settle(pack_id=pack.id)
    return pack.campaign_id, ana, bob


def test_a_payment_splits_by_the_shares_and_adds_up_to_the_unit(ctx, tmp_path):
    campaign_id, ana, bob = _campaign_with_work(tmp_path)
    carl = make_user()
    give(carl, "token", T)
    staking.stake(carl, T // 2, 1, now=NOW - timedelta(days=1))
    amount = TOKEN_UNIT // 10 + 7  # an odd amount: rounding leaves a remainder
    recorded = revenue.record_campaign_payment(campaign_id, amount, external_ref="INV-1", actor_id=None, now=NOW)
    payment = recorded.payment
    assert recorded.created and payment.contributors + payment.stakers + payment.treasury == amount
    # 70 % to contributors by labels × reputation (ana 2 labels, bob 1, same reputation), 20 % to carl, 10 % + remainder to the treasury
    contributors_part = amount * 7000 // 10000
    assert ledger.balance(ana, "token") == contributors_part * 2 // 3
    assert ledger.balance(bob, "token") == contributors_part * 1 // 3
    assert ledger.balance(carl, "token") == T // 2 + amount * 2000 // 10000
    assert ledger.balance(treasury_id(NOW), "token") == payment.treasury
    minted = db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.kind == "revenue"))
    assert minted == amount
    [line] = revenue.statements(ana)
    assert (line.role, line.amount, line.external_ref) == ("contributor", contributors_part * 2 // 3, "INV-1")


def test_a_payment_recorded_twice_makes_one_distribution(ctx, tmp_path):
    campaign_id, ana, _bob = _campaign_with_work(tmp_path)
    first = revenue.record_campaign_payment(campaign_id, T // 10, external_ref="INV-9", actor_id=None, now=NOW)
    again = revenue.record_campaign_payment(campaign_id, T // 10, external_ref=" INV-9 ", actor_id=None, now=NOW + timedelta(hours=1))
    assert not again.created and again.payment.id == first.payment.id
    assert db.session.scalar(select(func.count()).select_from(RevenuePayment)) == 1
    assert db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.kind == "revenue")) == T // 10


@pytest.mark.postgres_only
def test_the_same_payment_recorded_at_once_twice_pays_once(app, tmp_path):
    with app.test_request_context():
        campaign_id, _ana, _bob = _campaign_with_work(tmp_path)
        db.session.remove()
    barrier = threading.Barrier(2)
    created = []

    def record() -> None:
        with app.test_request_context():
            barrier.wait(timeout=10)
            try:
                created.append(revenue.record_campaign_payment(campaign_id, T // 10, external_ref="INV-2", actor_id=None, now=NOW).created)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=record) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(created) == [False, True]
    with app.app_context():
        assert db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.kind == "revenue")) == T // 10


def test_a_community_dataset_sale_pays_its_share_holders(ctx, tmp_path):
    campaign_id, ana, bob = _campaign_with_work(tmp_path, kind="community", revenue_shares=5)
    assert db.session.get(Campaign, campaign_id).kind == "community"
    revenue.record_campaign_payment(campaign_id, 3000, external_ref="LICENSE-1", actor_id=None, now=NOW)
    assert ledger.balance(ana, "token") == 2100 * 2 // 3 and ledger.balance(bob, "token") == 2100 // 3
    assert [line.role for line in revenue.statements(ana)] == ["holder"]


def test_bad_payments_are_refused(ctx, tmp_path):
    pack = make_pack(tmp_path, items=1)
    for amount, ref, message in ((0, "X", "above zero"), (-1, "X", "above zero"), (2**63, "X", "more than the ledger"),
                                 (5, "  ", "reference")):
        with pytest.raises(EconomyError, match=message):
            revenue.record_campaign_payment(pack.campaign_id, amount, external_ref=ref, actor_id=None, now=NOW)
    with pytest.raises(EconomyError, match="campaign does not exist"):
        revenue.record_campaign_payment(pack.campaign_id + 999, 5, external_ref="X", actor_id=None, now=NOW)
    assert db.session.scalar(select(func.count()).select_from(RevenuePayment)) == 0
