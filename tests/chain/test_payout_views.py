"""The wallet page's withdrawals: balance, the withdraw form and its errors, the history polling until the
payout is confirmed; and the moderators' chain console."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from jobs.chain import settle_withdrawals
from sapien.chain.models import ChainTransaction
from sapien.database import utcnow
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT
from tests.chain.conftest import MEMBER_ADDRESS

pytestmark = pytest.mark.chain

TOKEN = TOKEN_UNIT
KEY = re.compile(r'name="key" type="hidden" value="([0-9a-f]+)"')


def member_with_tokens(make_member, tokens: int = TOKEN // 10, wallet: bool = True):
    from sapien.chain.wallet_models import Wallet
    from sapien.ledger import service as ledger

    member = make_member("ada")
    if wallet:
        db.session.add(Wallet(user_id=member.id, address=MEMBER_ADDRESS, payout_chain_id=31337, linked_at=utcnow()))
        db.session.commit()
    ledger.credit(member.id, "token", tokens, kind="test_grant", key=f"grant:{member.id}", now=utcnow())
    return member


def withdraw(member, amount: str, currency: str = "token"):
    page = member.client.get("/wallet").get_data(as_text=True)
    key = KEY.search(page).group(1)
    return member.post("/wallet/withdraw", {"currency": currency, "amount": amount, "key": key})


def test_a_member_withdraws_and_follows_the_payout_until_it_is_confirmed(chain, make_member):
    member = member_with_tokens(make_member)
    page = member.client.get("/wallet").get_data(as_text=True)
    assert 'data-testid="token-balance">0.1<' in page and "No withdrawals yet." in page

    sent = withdraw(member, "0.04")
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/wallet")
    page = member.client.get("/wallet").get_data(as_text=True)
    assert "0.04 tokens are on their way to your wallet." in page
    assert 'data-testid="token-balance">0.06<' in page
    fragment = member.client.get("/wallet/withdrawals", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html and "HX-Request" in fragment.headers["Vary"]
    assert ">Pending<" in html and 'hx-trigger="every' in html

    settle_withdrawals()
    db.session.expire_all()
    tx_hash = db.session.scalar(select(ChainTransaction.tx_hash).where(ChainTransaction.kind == "payout"))
    html = member.client.get("/wallet/withdrawals", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert ">Confirmed<" in html and tx_hash in html and 'hx-trigger="every' not in html  # done: no more polling
    assert "<html" in member.client.get("/wallet/withdrawals").get_data(as_text=True)  # a full page too
    assert chain.contract("SapienToken").functions.balanceOf(MEMBER_ADDRESS).call() == 4 * TOKEN // 100


BAD_AMOUNTS = [
    ("lots", "Enter an amount of tokens, like 12.5."),
    ("-1", "Amounts cannot be negative."),
    ("NaN", "Enter an amount of tokens, like 12.5."),
    ("2,5", "Did you mean 25 tokens?"),
    ("0.0000001", "Tokens have at most 6 decimal places."),
    ("0.5", "That is more than your balance."),
    ("1e40", "That is more than your balance."),
]


def test_bad_amounts_are_refused_in_the_page_and_nothing_is_withdrawn(chain, make_member):
    from sapien.ledger import service as ledger

    member = member_with_tokens(make_member)
    for amount, message in BAD_AMOUNTS:
        response = withdraw(member, amount)
        assert response.status_code == 422, amount
        assert message in response.get_data(as_text=True), amount
    db.session.expire_all()
    assert ledger.balance(member.id, "token") == TOKEN // 10


def test_without_a_wallet_the_page_asks_for_one_and_a_withdrawal_is_refused(chain, make_member):
    member = member_with_tokens(make_member, wallet=False)
    page = member.client.get("/wallet").get_data(as_text=True)
    assert "Link a wallet before you withdraw." in page and 'id="withdraw-form"' not in page
    response = member.post("/wallet/withdraw", {"currency": "token", "amount": "0.01", "key": "a" * 32})
    assert response.status_code == 422 and "Link a wallet before you withdraw." in response.get_data(as_text=True)


def test_the_chain_console_shows_signer_contracts_batches_and_the_reconciliation_to_moderators(chain, make_member):
    from sapien.chain.client import signer_address
    from sapien.chain.payouts import request_withdrawal
    from sapien.chain.wallet_models import Wallet
    from sapien.ledger import service as ledger
    from tests.chain.conftest import new_member

    moderator = make_member("mod", role="moderator")
    ada = new_member("ada")
    db.session.add(Wallet(user_id=ada, address=MEMBER_ADDRESS, payout_chain_id=31337, linked_at=utcnow()))
    db.session.commit()
    ledger.credit(ada, "token", TOKEN // 10, kind="test_grant", key="grant", now=utcnow())
    request_withdrawal(ada, "token", TOKEN // 20, "console-test-1", utcnow())
    settle_withdrawals()

    page = moderator.client.get("/manage/chain")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert signer_address() in html and 'data-testid="signer-nonce"' in html
    assert chain.addresses["SapienPayout"] in html and "PartnerToken" in html
    assert "the ledger and the chain agree to the base unit" in html
    batches = html.split('data-testid="batches"', 1)[1]
    assert ">0.05<" in batches and "Confirmed" in batches
    assert 'href="/manage/chain"' in moderator.client.get("/dashboard").get_data(as_text=True)  # in the Moderation menu
    fragment = moderator.client.get("/manage/chain", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Payout batches" in fragment


def test_members_cannot_open_the_chain_console(chain, make_member):
    member = make_member("ada")
    assert member.client.get("/manage/chain").status_code == 403
    assert member.post("/manage/chain/transactions/1/retry").status_code == 403


def test_retry_refuses_a_refunded_payout_and_sends_a_failed_mint_again(chain, make_member, wallets):
    from jobs.chain import mint_badge
    from sapien.chain.client import signer_address
    from sapien.chain.payouts import request_withdrawal
    from sapien.chain.wallet_models import Wallet
    from sapien.ledger import service as ledger
    from sapien.progression.awards import award_badge
    from sapien.progression.models import MintRequest
    from tests.chain.conftest import new_member

    moderator = make_member("mod", role="moderator")
    ada = new_member("ada")
    db.session.add(Wallet(user_id=ada, address=MEMBER_ADDRESS, payout_chain_id=31337, linked_at=utcnow()))
    db.session.commit()
    wallets[ada] = MEMBER_ADDRESS
    # Neither the payout contract nor the platform may mint for now: both transactions fail.
    token, badge = chain.contract("SapienToken"), chain.contract("SapienBadge")
    chain.transact(token.functions.revokeRole(token.functions.MINTER_ROLE().call(), chain.addresses["SapienPayout"]), signer_address())
    chain.transact(badge.functions.revokeRole(badge.functions.MINTER_ROLE().call(), signer_address()), signer_address())
    ledger.credit(ada, "token", TOKEN // 10, kind="test_grant", key="grant", now=utcnow())
    request_withdrawal(ada, "token", TOKEN // 20, "retry-test-1", utcnow())
    settle_withdrawals()
    award_badge(ada, "first-label", utcnow())
    mint_id = db.session.scalar(select(MintRequest.id))
    assert mint_badge(mint_id) == "failed"
    payout_tx, mint_tx = db.session.scalars(select(ChainTransaction.id).order_by(ChainTransaction.id)).all()

    html = moderator.client.get("/manage/chain").get_data(as_text=True)
    failed = html.split('data-testid="tx-failed"', 1)[1].split("</table>", 1)[0]
    assert "payout" in failed and "badge_mint" in failed and "Refunded" in failed

    refused = moderator.post(f"/manage/chain/transactions/{payout_tx}/retry", follow_redirects=True)
    assert "A failed payout batch was refunded to its members" in refused.get_data(as_text=True)
    assert db.session.get(ChainTransaction, payout_tx).status == "failed"

    chain.transact(badge.functions.grantRole(badge.functions.MINTER_ROLE().call(), signer_address()), signer_address())
    retried = moderator.post(f"/manage/chain/transactions/{mint_tx}/retry", follow_redirects=True)
    assert f"Transaction {mint_tx} is queued again." in retried.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(MintRequest, mint_id).state == "submitted"
    assert mint_badge(mint_id) == "minted"
    assert badge.functions.balanceOf(MEMBER_ADDRESS).call() == 1
