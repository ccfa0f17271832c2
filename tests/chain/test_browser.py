"""In a real browser: the badge page follows its mint live, from waiting to minted with the transaction hash."""

from __future__ import annotations

import pytest
from sqlalchemy import select

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
