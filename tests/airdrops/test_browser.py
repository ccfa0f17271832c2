"""In real chromium: a moderator configures, previews, runs (the status row polls until the job is done),
compares and proposes freezing; a second moderator approves and publishes; a member claims with the call
data the page prepares (sent with eth-account, as a wallet would)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from eth_account import Account
from playwright.sync_api import expect

from sapien.i18n import TOKEN_UNIT
from tests.airdrops.test_distributor import chain_now, fund_gas, send_from
from tests.browser.test_nav import sign_in

pytestmark = pytest.mark.browser

# A minimal injected wallet: the account from the test, transactions sent by Python (eth-account).
PROVIDER = """
window.ethereum = {
  request: async function ({ method, params }) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [%(address)r];
    if (method === "eth_chainId") return "0x7a69";
    if (method === "eth_sendTransaction") return await window.pythonSendTransaction(params[0]);
    throw new Error("unsupported method " + method);
  },
};
"""


@dataclass
class Person:
    id: int
    username: str
    password: str = "correct horse battery"


def person(username: str, role: str = "member") -> Person:
    """A signed-up user the browser signs in as (the test's app context is pushed by `chain`, so the test
    client's logins would share its `g`)."""
    from sapien.accounts import service as accounts
    from sapien.database import utcnow

    user = accounts.sign_up(accounts.SignUp(username=username, email=f"{username}@example.org", password=Person.password), now=utcnow(), role=role)
    return Person(user.id, username)


def test_configure_preview_run_compare_freeze_publish_and_claim(app, chain, page, second_page):
    from sapien.chain.wallet_models import Wallet
    from sapien.database import unit_of_work, utcnow
    from sapien.ledger.service import credit

    first, second, member = person("alice_mod", "moderator"), person("bruno_mod", "moderator"), person("claire")
    key = Account.create()
    chain.w3.provider.make_request("evm_mine", [])
    as_of = max(chain_now(chain), utcnow()) + timedelta(seconds=1)
    credit(member.id, "points", 120, kind="test", key="claire-points", now=as_of - timedelta(minutes=5))
    with unit_of_work() as session:
        session.add(Wallet(user_id=member.id, address=key.address, linked_at=as_of - timedelta(minutes=5)))

    sign_in(page, first)
    page.goto("/airdrops/manage")
    page.get_by_label("Name").fill("Season one")
    page.get_by_label("As of (UTC)").fill(as_of.isoformat())
    page.get_by_label("Total amount (tokens)").fill("0")
    page.get_by_label("Weight: Points").fill("1")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("alert")).to_contain_text("The total amount must be more than zero.")
    page.get_by_label("Total amount (tokens)").fill("500")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("1 of 3 members eligible")
    expect(page.locator("#preview-table")).to_contain_text("Points")

    page.get_by_role("button", name="Run snapshot").click()
    expect(page).to_have_url(re.compile(r"/airdrops/snapshots/\d+$"))
    snapshot_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#status-row")).to_have_attribute("data-status", "queued")
    from jobs.airdrops import run_snapshot

    assert run_snapshot(snapshot_id) == "done"
    # The polled status row turns to done without a reload.
    expect(page.locator("#status-row")).to_have_attribute("data-status", "done")
    page.get_by_role("link", name="Show the results").click()
    expect(page.locator("#results-table")).to_contain_text("claire")
    expect(page.locator("#results-table")).to_contain_text("500")

    # A second run of the same config, then the comparison: no member's outcome changed.
    from sapien.airdrops.config import parse_config
    from sapien.airdrops.snapshots import create_snapshot

    other = create_snapshot(parse_config({"name": "Season one bis", "as_of": as_of.isoformat(), "total_tokens": "500", "weights": {"points": 1}}, as_of + timedelta(seconds=1)), first.id, utcnow())
    assert run_snapshot(other.id) == "done"
    page.reload()
    page.get_by_label("Compare with").select_option(str(other.id))
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#compare-same")).to_be_visible()
    page.goto(f"/airdrops/snapshots/{snapshot_id}")
    page.get_by_role("button", name="Propose freezing").click()
    expect(page.get_by_text("Freezing is proposed; a second moderator approves it.")).to_be_visible()
    expect(page.get_by_role("button", name="Approve and freeze")).to_have_count(0)

    # The second moderator, in a browser of their own, approves and publishes.
    other_page = second_page()
    sign_in(other_page, second)
    other_page.goto(f"/airdrops/snapshots/{snapshot_id}")
    other_page.get_by_role("button", name="Approve and freeze").click()
    expect(other_page.get_by_text("Frozen", exact=True)).to_be_visible()
    other_page.get_by_label("Claim deadline (UTC)").fill((as_of + timedelta(days=30)).isoformat())
    other_page.get_by_role("button", name="Publish on chain").click()
    expect(other_page.get_by_text("Being published…")).to_be_visible()
    from jobs.airdrops import publish_airdrop

    address = publish_airdrop(snapshot_id)
    other_page.reload()
    expect(other_page.locator("#distributor")).to_have_text(address)
    other_page.context.close()

    # The member claims from the injected wallet (EIP-1193): its eth_sendTransaction is answered by
    # eth-account on the Python side, signing and sending exactly the transaction the page prepared.
    sent = []

    def send_transaction(transaction: dict) -> str:
        assert transaction["from"].lower() == key.address.lower()
        receipt = send_from(chain, key, transaction["to"], transaction["data"])
        sent.append(receipt)
        return "0x" + receipt["transactionHash"].hex().removeprefix("0x")

    fund_gas(chain, key.address)
    member_page = second_page()
    member_page.expose_function("pythonSendTransaction", send_transaction)
    member_page.add_init_script(PROVIDER % {"address": key.address})
    sign_in(member_page, member)
    member_page.goto(f"/airdrops/{snapshot_id}/claim")
    expect(member_page.locator("#allocation-amount")).to_have_text("500 SAPIEN")
    expect(member_page.locator("#claim-status")).to_have_text("Not claimed yet.")
    member_page.get_by_role("button", name="Claim from my wallet").click()
    expect(member_page.locator("#claim-status")).to_have_text("Claimed.")  # read back from the chain
    assert len(sent) == 1 and sent[0]["status"] == 1
    assert chain.contract("SapienToken").functions.balanceOf(key.address).call() == 500 * TOKEN_UNIT
    member_page.goto(f"/airdrops/{snapshot_id}")
    expect(member_page.locator("#claimed-share")).to_have_text("100%")
    member_page.context.close()
