"""A real worker killed with SIGKILL between sign and send, and between send and receipt, on real anvil:
a fresh worker finishes the mint from the stored bytes, and the member ends with exactly one token."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

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
    award_badge(member.id, "first-label", utcnow())  # queues the mint job on the chain queue
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
    job_id = f"chain-mint-{mint_id}"
    wait_for(lambda: any(job_id in line for line in broken_invariants_of(app)), timeout=10, what="the abandoned job")

    assert workers.start(burst=True).wait() == 0  # reconciles, re-runs the job, drains
    assert state_of(app, mint_id) == ("minted", "confirmed")
    badge = chain.contract("SapienBadge")
    assert badge.functions.balanceOf(MEMBER_ADDRESS).call() == 1
    assert badge.functions.ownerOf(badge_token_id(member.id, "first-label")).call() == MEMBER_ADDRESS
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(func.count()).select_from(ChainTransaction)) == 1
    assert_invariants(app)
