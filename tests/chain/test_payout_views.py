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
from tests.chain.conftest import MEMBER_ADDRESS

pytestmark = pytest.mark.chain

TOKEN = 10**18
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
    ("lots", "Enter a number, such as 2.5."),
    ("-1", "Enter an amount above zero."),
    ("NaN", "Enter an amount above zero."),
    ("0.0000000000000000001", "Tokens have at most 18 decimal places."),
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
