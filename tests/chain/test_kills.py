"""A real worker killed with SIGKILL between sign and send, and between send and receipt, on real anvil:
a fresh worker finishes the mint (or the payout batch) from the stored bytes, and the member ends with
exactly one token (each withdrawal with exactly one payout)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sapien.i18n import TOKEN_UNIT
from tests.chain.conftest import MEMBER_ADDRESS
from tests.faults.conftest import assert_invariants, broken_invariants_of, wait_for, workers  # noqa: F401

pytestmark = [pytest.mark.faults, pytest.mark.chain]


def state_of(app, mint_id: int) -> tuple[str, str | None]:
    from sapien.chain.models import ChainTransaction
    from sapien.extensions import db
    from sapien.progression.models import MintRequest

    with app.app_context():
        db.session.remove()
        request = db.session.get(MintRequest, mint_id)
        transaction = db.session.get(ChainTransaction, request.tx_id)
        return request.state, transaction.status


@pytest.mark.parametrize("failpoint", ["chain.after-sign", "chain.after-send"])
def test_a_mint_killed_mid_flight_finishes_with_exactly_one_token(app, chain, wallets, workers, make_member, failpoint):  # noqa: F811
    from sapien.chain.contracts import badge_token_id
    from sapien.chain.models import ChainTransaction
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.progression.awards import award_badge
    from sapien.progression.minting import _queue_mint
    from sapien.progression.models import MintRequest

    member = make_member("ada")
    wallets[member.id] = MEMBER_ADDRESS
    award_badge(member.id, "first-label", utcnow())  # queues the batch mint job on the chain queue
    mint_id = db.session.scalar(select(MintRequest.id).where(MintRequest.user_id == member.id))
    # The wallet is read here (the worker's wallets area is not ours to answer); the row is then
    # "submitted" with its outbox transaction, as the job itself would leave it.
    assert _queue_mint(mint_id, utcnow())
    db.session.commit()

    worker = workers.start(f"{failpoint}=kill", queues=["chain"])
    assert worker.wait() == -9
    worker.kill9()
    state, status = state_of(app, mint_id)
    assert state == "submitted" and status == ("signed" if failpoint == "chain.after-sign" else "sent")
    job_id = "chain-mint-ready"  # the award queued the batch job, which the kill cut short
    # Abandoned once the dead worker's heartbeat lapsed (the pending-work line alone shows at once).
    wait_for(lambda: any(job_id in line and "dead worker" in line for line in broken_invariants_of(app)), timeout=10, what="the abandoned job")

    assert workers.start(burst=True).wait() == 0  # reconciles, re-runs the job, drains
    assert state_of(app, mint_id) == ("minted", "confirmed")
    badge = chain.contract("SapienBadge")
    assert badge.functions.balanceOf(MEMBER_ADDRESS).call() == 1
    assert badge.functions.ownerOf(badge_token_id(member.id, "first-label")).call() == MEMBER_ADDRESS
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(func.count()).select_from(ChainTransaction)) == 1
    assert_invariants(app)


def payout_state(app) -> tuple[list[str], list[str], list[str]]:
    from sapien.chain.models import ChainTransaction
    from sapien.chain.payout_models import PayoutBatch, Withdrawal
    from sapien.extensions import db

    with app.app_context():
        db.session.remove()
        return (
            list(db.session.scalars(select(Withdrawal.status).order_by(Withdrawal.id))),
            list(db.session.scalars(select(PayoutBatch.status).order_by(PayoutBatch.id))),
            list(db.session.scalars(select(ChainTransaction.status).where(ChainTransaction.kind == "payout"))),
        )


def test_a_payout_killed_between_sign_and_send_then_between_send_and_receipt_pays_exactly_once(app, chain, workers):  # noqa: F811
    from sapien.chain.payouts import request_withdrawal
    from sapien.chain.wallet_models import Wallet
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from tests.chain.conftest import OTHER_ADDRESS, new_member

    amounts = {}
    for name, address, amount in (("ada", MEMBER_ADDRESS, 3 * TOKEN_UNIT // 100), ("bob", OTHER_ADDRESS, 5 * TOKEN_UNIT // 100 + 1)):
        user_id = new_member(name)
        db.session.add(Wallet(user_id=user_id, address=address, payout_chain_id=31337, linked_at=utcnow()))
        db.session.commit()
        ledger.credit(user_id, "token", amount, kind="test_grant", key=f"grant:{name}", now=utcnow())
        request_withdrawal(user_id, "token", amount, f"withdraw-{name}-1", utcnow())  # queues the settlement job
        amounts[address] = amount

    def abandoned() -> bool:
        # The dead worker's job is seen as abandoned once its heartbeat lapsed (not merely "pending work
        # without a live job", which holds at once): only then does the next worker's reconcile take it up.
        return any("left running by dead worker" in line for line in broken_invariants_of(app))

    # Killed between sign and send: the batch and its signed bytes are stored, nothing was broadcast.
    worker = workers.start("chain.after-sign=kill", queues=["chain"])
    assert worker.wait() == -9
    worker.kill9()
    assert payout_state(app) == (["batched", "batched"], ["queued"], ["signed"])
    wait_for(abandoned, timeout=10, what="the abandoned job")

    # The next worker reconciles, broadcasts those very bytes, and is killed before the receipt.
    worker = workers.start("chain.after-send=kill")
    assert worker.wait() == -9
    worker.kill9()
    assert payout_state(app) == (["batched", "batched"], ["queued"], ["sent"])
    wait_for(abandoned, timeout=10, what="the abandoned job")

    assert workers.start(burst=True).wait() == 0  # reconciles, re-runs the jobs, drains
    assert payout_state(app) == (["confirmed", "confirmed"], ["confirmed"], ["confirmed"])
    token = chain.contract("SapienToken")
    assert {address: token.functions.balanceOf(address).call() for address in amounts} == amounts
    assert token.functions.totalSupply().call() == sum(amounts.values())
    assert_invariants(app)
