"""In a real browser: the badge page follows its mint live, from waiting to minted with the transaction hash;
a member links a wallet, withdraws tokens and sees the payout confirmed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sapien.i18n import TOKEN_UNIT
from tests.chain.conftest import MEMBER_ADDRESS

pytestmark = [pytest.mark.browser, pytest.mark.chain]


def test_the_badge_page_shows_the_mint_go_through_without_a_reload(app, chain, wallets, make_member, page):
    from playwright.sync_api import expect

    from jobs.chain import mint_badge
    from sapien.chain.models import ChainTransaction
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.progression.awards import award_badge
    from sapien.progression.models import MintRequest

    app.config["MINT_POLL_SECONDS"] = 1
    member = make_member("ada")
    wallets[member.id] = MEMBER_ADDRESS
    award_badge(member.id, "first-label", utcnow())
    mint_id = db.session.scalar(select(MintRequest.id).where(MintRequest.user_id == member.id))
    db.session.commit()

    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.goto("/badges/first-label")
    page.wait_for_load_state("load")
    status = page.locator("#mint-status")
    expect(status).to_contain_text("Mint: waiting to be minted on chain")

    assert mint_badge(mint_id) == "minted"  # the chain queue's job, run here
    db.session.expire_all()
    tx_hash = db.session.scalar(select(ChainTransaction.tx_hash))
    expect(status).to_contain_text("Mint: minted on chain")
    expect(status).to_contain_text(tx_hash)
    expect(status.get_by_role("link", name="Token metadata")).to_be_visible()


def test_a_member_links_a_wallet_withdraws_tokens_and_sees_them_arrive(app, chain, make_member, page):
    import re

    from eth_account import Account
    from playwright.sync_api import expect

    from jobs.chain import settle_withdrawals
    from sapien.database import utcnow
    from sapien.ledger import service as ledger
    from tests.browser.test_nav import sign_in
    from tests.browser.test_wallet import FAKE_PROVIDER
    from tests.chain.conftest import sign

    app.config["WITHDRAWAL_POLL_SECONDS"] = 1
    member, key = make_member("ada"), Account.create()
    ledger.credit(member.id, "token", 3 * TOKEN_UNIT // 10, kind="test_grant", key="grant", now=utcnow())

    page.expose_function("pythonPersonalSign", lambda data_hex, _address: sign(key, bytes.fromhex(data_hex.removeprefix("0x")).decode()))
    page.add_init_script(FAKE_PROVIDER % {"address": key.address})
    sign_in(page, member)
    page.goto("/wallet")
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("linked-address")).to_have_text(key.address)
    expect(page.get_by_test_id("token-balance")).to_have_text("0.3")

    page.get_by_label("Amount").fill("0.25")
    page.get_by_role("button", name="Withdraw to my wallet").click()
    expect(page.get_by_text("0.25 tokens are on their way to your wallet.")).to_be_visible()
    expect(page.get_by_test_id("token-balance")).to_have_text("0.05")
    status = page.get_by_test_id("withdrawal-status")
    expect(status).to_have_text("Pending")

    assert settle_withdrawals()["confirmed"] == 1  # the chain queue's job, run here
    expect(status).to_have_text("Confirmed")  # the list polls itself: no reload
    expect(page.get_by_test_id("withdrawal").locator("code")).to_have_text(re.compile(r"^0x[0-9a-f]{64}$"))
    assert chain.contract("SapienToken").functions.balanceOf(key.address).call() == TOKEN_UNIT // 4
