"""Token withdrawals and their settlement on anvil: the ledger debit, batching, exactly one payout per
withdrawal, refunds of a failed batch, and the reconciliation of the ledger against the chain."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from jobs.chain import settle_withdrawals
from sapien.chain.models import ChainTransaction
from sapien.chain.payout_models import PayoutBatch, Withdrawal
from sapien.database import utcnow
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT
from tests.chain.conftest import MEMBER_ADDRESS, OTHER_ADDRESS, new_member

TOKEN = TOKEN_UNIT // 100  # a hundredth of a token

pytestmark = pytest.mark.chain


def funded_member(name: str, address: str | None, tokens: int = 10 * TOKEN, partner: int = 0):
    """A member with `tokens` base units (and partner tokens) and, when given, a wallet paid on anvil."""
    from sapien.chain.wallet_models import Wallet
    from sapien.ledger import service as ledger

    member = SimpleNamespace(id=new_member(name))
    if address:
        db.session.add(Wallet(user_id=member.id, address=address, payout_chain_id=31337, linked_at=utcnow()))
        db.session.commit()
    if tokens:
        ledger.credit(member.id, "token", tokens, kind="test_grant", key=f"grant:{member.id}", now=utcnow())
    if partner:
        ledger.credit(member.id, "partner", partner, kind="test_grant", key=f"grant-partner:{member.id}", now=utcnow())
    return member


def withdraw(user_id: int, amount: int, currency: str = "token", key: str | None = None):
    from sapien.chain.payouts import request_withdrawal

    return request_withdrawal(user_id, currency, amount, key or uuid.uuid4().hex, utcnow())


def balance(user_id: int, currency: str = "token") -> int:
    from sapien.ledger import service as ledger

    db.session.expire_all()
    return ledger.balance(user_id, currency)


def on_chain(chain, address: str, name: str = "SapienToken") -> int:
    return chain.contract(name).functions.balanceOf(address).call()


def statuses() -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(Withdrawal.status).order_by(Withdrawal.id)))


def test_withdrawals_settle_in_one_batch_transaction_exactly_once(chain, redis_conn):
    from rq import Queue
    from rq.serializers import JSONSerializer

    from sapien.chain.reconciliation import reconcile_payouts

    ada = funded_member("ada", MEMBER_ADDRESS)
    bob = funded_member("bob", OTHER_ADDRESS)
    withdraw(ada.id, 3 * TOKEN)
    withdraw(ada.id, 1)  # one base unit
    withdraw(bob.id, 7 * TOKEN + 5)
    assert balance(ada.id) == 7 * TOKEN - 1 and balance(bob.id) == 3 * TOKEN - 5  # debited at request time
    assert statuses() == ["pending", "pending", "pending"]
    assert Queue("chain", connection=redis_conn, serializer=JSONSerializer).get_job_ids() == ["chain-settle-withdrawals"]

    first = settle_withdrawals()
    assert first["batches_formed"] == 1 and first["confirmed"] == 1
    assert settle_withdrawals() == {"batches_formed": 0, "confirmed": 0, "failed": 0, "unfinished": 0}  # twice: nothing more
    assert on_chain(chain, MEMBER_ADDRESS) == 3 * TOKEN + 1
    assert on_chain(chain, OTHER_ADDRESS) == 7 * TOKEN + 5
    assert statuses() == ["confirmed", "confirmed", "confirmed"]
    batch = db.session.scalar(select(PayoutBatch))
    assert (batch.status, batch.recipients, int(batch.total)) == ("confirmed", 3, 10 * TOKEN + 6)
    assert db.session.scalar(select(func.count()).select_from(ChainTransaction).where(ChainTransaction.kind == "payout")) == 1

    report = reconcile_payouts(utcnow())
    assert report.ok, (report.mismatched_batches, report.mismatched_members)
    assert [(c.ledger_total, c.chain_total) for c in report.batches] == [(10 * TOKEN + 6, 10 * TOKEN + 6)]
    assert {(c.username, c.withdrawn, c.on_chain) for c in report.members} == {("ada", 3 * TOKEN + 1, 3 * TOKEN + 1), ("bob", 7 * TOKEN + 5, 7 * TOKEN + 5)}


def test_partner_tokens_withdraw_through_the_partner_token(chain):
    ada = funded_member("ada", MEMBER_ADDRESS, tokens=2 * TOKEN, partner=5 * TOKEN)
    withdraw(ada.id, 4 * TOKEN, currency="partner")
    withdraw(ada.id, TOKEN)
    assert settle_withdrawals()["confirmed"] == 2  # one batch per token
    assert on_chain(chain, MEMBER_ADDRESS, "PartnerToken") == 4 * TOKEN
    assert on_chain(chain, MEMBER_ADDRESS, "SapienToken") == TOKEN
    assert balance(ada.id, "partner") == TOKEN and balance(ada.id) == TOKEN


def test_many_withdrawals_go_in_as_few_batches_as_the_batch_size_allows(chain, app_ctx):
    from sapien.chain.payouts import settle_withdrawals as settle

    ada = funded_member("ada", MEMBER_ADDRESS)
    for _ in range(5):
        withdraw(ada.id, TOKEN)
    result = settle(utcnow(), batch_size=2)
    assert (result.batches_formed, result.confirmed) == (3, 3)
    assert [int(t) for t in db.session.scalars(select(PayoutBatch.total).order_by(PayoutBatch.id))] == [2 * TOKEN, 2 * TOKEN, TOKEN]
    assert on_chain(chain, MEMBER_ADDRESS) == 5 * TOKEN


def test_bad_withdrawals_are_refused_with_a_reason_and_change_nothing(chain):
    from sapien.chain.payouts import PayoutError

    ada = funded_member("ada", MEMBER_ADDRESS, tokens=2 * TOKEN)
    loner = funded_member("loner", None)
    with pytest.raises(PayoutError, match="more than your balance") as refused:
        withdraw(ada.id, 2 * TOKEN + 1)
    assert refused.value.field == "amount"
    with pytest.raises(PayoutError, match="above zero"):
        withdraw(ada.id, 0)
    with pytest.raises(PayoutError, match="Only tokens"):
        withdraw(ada.id, 1, currency="points")
    with pytest.raises(PayoutError, match="Link a wallet"):
        withdraw(loner.id, 1)
    assert balance(ada.id) == 2 * TOKEN and statuses() == []

    # The same form sent twice withdraws once; its key with another amount is refused.
    first, again = withdraw(ada.id, TOKEN, key="same-form-key"), withdraw(ada.id, TOKEN, key="same-form-key")
    assert first.created and not again.created and first.withdrawal_id == again.withdrawal_id
    with pytest.raises(PayoutError, match="out of date"):
        withdraw(ada.id, 2, key="same-form-key")
    assert balance(ada.id) == TOKEN and statuses() == ["pending"]


@pytest.mark.postgres_only
def test_two_withdrawals_at_once_never_overdraw(app, chain):
    from sapien.chain.payouts import PayoutError
    from sapien.chain.wallet_models import Wallet
    from sapien.ledger import service as ledger

    user_id = new_member("ada")
    db.session.add(Wallet(user_id=user_id, address=MEMBER_ADDRESS, payout_chain_id=31337, linked_at=utcnow()))
    db.session.commit()
    ledger.credit(user_id, "token", 10 * TOKEN, kind="test_grant", key="grant", now=utcnow())
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def take(amount: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                outcomes.append(withdraw(user_id, amount))
            except Exception as error:  # noqa: BLE001 - counted below
                outcomes.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=take, args=(4 * TOKEN,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    refused = [o for o in outcomes if isinstance(o, PayoutError)]
    made = [o for o in outcomes if not isinstance(o, Exception)]
    assert (len(made), len(refused)) == (2, 2), outcomes
    assert balance(user_id) == 2 * TOKEN
    assert ledger.sum_of_entries(user_id, "token") == 2 * TOKEN
    assert db.session.scalar(select(func.sum(Withdrawal.amount))) == 8 * TOKEN


def test_a_failed_batch_is_refunded_by_compensating_entries(chain):
    from sapien.chain.client import signer_address
    from sapien.chain.reconciliation import reconcile_payouts
    from sapien.ledger import service as ledger

    ada = funded_member("ada", MEMBER_ADDRESS, tokens=5 * TOKEN)
    token, payout = chain.contract("SapienToken"), chain.contract("SapienPayout")
    # The payout contract loses its right to mint: the batch would revert.
    chain.transact(token.functions.revokeRole(token.functions.MINTER_ROLE().call(), payout.address), signer_address())
    withdraw(ada.id, 2 * TOKEN)
    assert balance(ada.id) == 3 * TOKEN
    assert settle_withdrawals()["failed"] == 1
    assert settle_withdrawals()["failed"] == 0  # twice: refunded once
    assert statuses() == ["refunded"]
    assert balance(ada.id) == 5 * TOKEN == ledger.sum_of_entries(ada.id, "token")
    kinds = [e.kind for e in ledger.recent_entries(ada.id, currency="token")]
    assert kinds == ["withdrawal_refund", "withdrawal", "test_grant"]  # a compensating entry, nothing edited
    assert on_chain(chain, MEMBER_ADDRESS) == 0
    batch = db.session.scalar(select(PayoutBatch))
    assert batch.status == "failed" and "AccessControl" in batch.last_error
    report = reconcile_payouts(utcnow())
    assert report.ok and report.members[0].withdrawn == 0 and report.batches[0].chain_total == 0


def test_the_reconciliation_lists_a_member_the_chain_paid_differently(chain):
    from sapien.chain.reconciliation import reconcile_payouts

    ada = funded_member("ada", MEMBER_ADDRESS)
    withdraw(ada.id, TOKEN)
    settle_withdrawals()
    # The database says more than was paid (a bad restore, a hand edit): both reports name it.
    withdrawal = db.session.scalar(select(Withdrawal))
    withdrawal.amount = TOKEN + 1
    db.session.commit()
    report = reconcile_payouts(utcnow())
    assert not report.ok
    (batch,) = report.mismatched_batches
    assert (batch.ledger_total, batch.chain_total) == (TOKEN + 1, TOKEN)
    (member,) = report.mismatched_members
    assert member.username == "ada" and member.withdrawn == TOKEN and member.confirmed == TOKEN + 1


def test_settlement_waits_for_the_chain_and_the_reconciler_lists_it(chain, app_ctx):
    from sapien.chain.outbox import ChainUnavailable
    from sapien.chain.payouts import withdrawal_history
    from sapien.queue import pending_rows

    ada = funded_member("ada", MEMBER_ADDRESS)
    withdraw(ada.id, TOKEN)
    assert [w.job_id for source, w in pending_rows() if source == "chain-withdrawals"] == ["chain-settle-withdrawals"]
    rpc = app_ctx.config["CHAIN_RPC_URL"]
    app_ctx.config["CHAIN_RPC_URL"] = "http://127.0.0.1:9"
    with pytest.raises(ChainUnavailable):
        settle_withdrawals()
    db.session.expire_all()
    (view,) = withdrawal_history(ada.id)
    assert view.status == "pending" and view.waiting_for_chain
    app_ctx.config["CHAIN_RPC_URL"] = rpc
    assert settle_withdrawals()["confirmed"] == 1
    (view,) = withdrawal_history(ada.id)
    assert view.status == "confirmed" and view.tx_hash and not view.waiting_for_chain
    assert [w for source, w in pending_rows() if source == "chain-withdrawals"] == []
