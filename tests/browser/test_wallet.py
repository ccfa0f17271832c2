"""Linking a wallet in real chromium: through an injected EIP-1193 provider whose personal_sign is
answered by eth-account on the Python side, and without one, by pasting a signature."""

from __future__ import annotations

import re

import pytest
from eth_account import Account
from playwright.sync_api import expect

from tests.browser.test_nav import sign_in
from tests.chain.conftest import sign

pytestmark = pytest.mark.browser

# A minimal EIP-1193 provider: accounts and chain from the test, signatures from Python (eth-account).
FAKE_PROVIDER = """
window.ethereum = {
  isFake: true,
  request: async function ({ method, params }) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [%(address)r];
    if (method === "eth_chainId") return "0x7a69";
    if (method === "personal_sign") return await window.pythonPersonalSign(params[0], params[1]);
    throw new Error("unsupported method " + method);
  },
};
"""


def test_connect_wallet_signs_through_the_injected_provider(app, make_member, page):
    member, key = make_member(), Account.create()
    signed = []

    def personal_sign(data_hex: str, address: str) -> str:
        text = bytes.fromhex(data_hex.removeprefix("0x")).decode()
        assert address == key.address
        signed.append(text)
        return sign(key, text)

    page.expose_function("pythonPersonalSign", personal_sign)
    page.add_init_script(FAKE_PROVIDER % {"address": key.address})
    sign_in(page, member)
    page.goto("/settings")
    page.get_by_role("link", name="Manage your wallet").click()
    expect(page).to_have_url(re.compile(r"/wallet$"))
    page.wait_for_load_state("load")
    expect(page.get_by_text("No wallet was found in this browser")).to_be_hidden()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_text(f"Your wallet {key.address} is linked.")).to_be_visible()
    expect(page.get_by_test_id("linked-address")).to_have_text(key.address)
    assert len(signed) == 1 and signed[0].startswith("127.0.0.1:")
    assert f"\n{key.address}\n" in signed[0] and "Chain ID: 31337" in signed[0]


def test_a_wallet_that_refuses_to_sign_is_reported_in_the_page(app, make_member, page):
    member, key = make_member(), Account.create()

    def refuse(_data_hex: str, _address: str) -> str:
        raise RuntimeError("User rejected the request.")

    page.expose_function("pythonPersonalSign", refuse)
    page.add_init_script(FAKE_PROVIDER % {"address": key.address})
    sign_in(page, member)
    page.goto("/wallet")
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_role("alert")).to_have_text("Your wallet did not sign. Try again, or sign with any wallet below.")
    expect(page.get_by_text("No wallet is linked yet.")).to_be_visible()


def test_without_a_provider_the_member_pastes_a_signature(app, make_member, page):
    member, key, stranger = make_member(), Account.create(), Account.create()
    sign_in(page, member)
    page.goto("/wallet")
    page.wait_for_load_state("load")
    expect(page.get_by_text("No wallet was found in this browser")).to_be_visible()
    expect(page.get_by_role("button", name="Connect wallet")).to_be_hidden()
    page.get_by_label("Wallet address").fill(key.address)
    page.get_by_role("button", name="Show the message to sign").click()
    message = page.get_by_test_id("siwe-message")
    expect(message).to_contain_text("wants you to sign in with your Ethereum account")
    text = message.inner_text()
    # Signed by the wrong key first: the page says so and keeps the message to sign again.
    page.get_by_label("Signature").fill(sign(stranger, text))
    page.get_by_role("button", name="Link wallet").click()
    expect(page.get_by_role("alert")).to_contain_text("not made by the wallet named in the message")
    expect(page.get_by_test_id("siwe-message")).to_have_text(text)
    page.get_by_label("Signature").fill(sign(key, text))
    page.get_by_role("button", name="Link wallet").click()
    expect(page.get_by_text(f"Your wallet {key.address} is linked.")).to_be_visible()
    expect(page.get_by_test_id("linked-address")).to_have_text(key.address)
