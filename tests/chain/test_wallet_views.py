"""The wallet page over HTTP: plain form posts that redirect, every refusal shown in the page, the JSON
the page's script asks for, and other sessions signed out when the wallet changes."""

from __future__ import annotations

import html
import re

from eth_account import Account

from tests.chain.conftest import sign

MESSAGE = re.compile(r'<pre class="siwe-message" data-testid="siwe-message">(.*?)</pre>', re.S)


def ask_for_message(member, address: str, chain_id: str = "31337"):
    return member.post("/wallet/message", {"address": address, "chain_id": chain_id})


def message_on(page) -> str:
    return html.unescape(MESSAGE.search(page.get_data(as_text=True)).group(1))


def test_the_wallet_page_needs_a_member_and_is_linked_from_settings(client, make_member):
    assert client.get("/wallet").status_code == 303
    member = make_member()
    assert 'href="/wallet"' in member.client.get("/settings").get_data(as_text=True)
    page = member.client.get("/wallet")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "No wallet is linked yet." in body and "No wallet was found in this browser" in body
    fragment = member.client.get("/wallet", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="wallet-panel"' in fragment and "<html" not in fragment


def test_pasting_a_signature_links_the_wallet(make_member):
    member, key = make_member(), Account.create()
    shown = ask_for_message(member, key.address.lower())
    assert shown.status_code == 200
    text = message_on(shown)
    assert text.startswith("localhost wants you to sign in with your Ethereum account:\n" + key.address)
    # A browser sends the form's line breaks as CRLF: the message still verifies.
    response = member.post("/wallet/link", {"message": text.replace("\n", "\r\n"), "signature": sign(key, text)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/wallet")
    page = member.client.get("/wallet").get_data(as_text=True)
    assert f"Your wallet {key.address} is linked." in page
    assert f'data-testid="linked-address">{key.address}<' in page


def test_every_refusal_is_shown_in_the_page_with_the_message_kept(make_member):
    member, key, stranger = make_member(), Account.create(), Account.create()
    text = message_on(ask_for_message(member, key.address))
    cases = {
        "another key": (text, sign(stranger, text), "not made by the wallet named in the message"),
        "tampered": (text.replace("Chain ID: 31337", "Chain ID: 1"), sign(key, text), "Chain 1 is not one Sapien uses"),
        "wrong domain": (text.replace("localhost wants", "evil.test wants"), sign(key, text), "another site (evil.test)"),
        "malformed": ("hello", sign(key, "hello"), "not a Sign-In with Ethereum message"),
        "not a signature": (text, "0xnope", "130 hexadecimal digits"),
    }
    for name, (message, signature, expected) in cases.items():
        response = member.post("/wallet/link", {"message": message, "signature": signature})
        body = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 422, name
        assert expected in body, name
    assert member.post("/wallet/link", {"message": text, "signature": sign(key, text)}).status_code == 303
    replay = member.post("/wallet/link", {"message": text, "signature": sign(key, text)})
    assert replay.status_code == 422 and "already used" in replay.get_data(as_text=True)


def test_a_wallet_of_another_member_is_refused_in_the_page(make_member):
    ana, bob, key = make_member(), make_member(), Account.create()
    text = message_on(ask_for_message(ana, key.address))
    ana.post("/wallet/link", {"message": text, "signature": sign(key, text)})
    text = message_on(ask_for_message(bob, key.address))
    response = bob.post("/wallet/link", {"message": text, "signature": sign(key, text)})
    assert response.status_code == 422
    assert "already linked to another member" in response.get_data(as_text=True)


def test_bad_requests_for_a_message_are_shown_in_the_page_and_as_json(make_member):
    member = make_member()
    page = ask_for_message(member, "0x1234")
    assert page.status_code == 422 and "not a wallet address" in page.get_data(as_text=True)
    page = ask_for_message(member, Account.create().address, chain_id="1")
    assert page.status_code == 422 and "Choose an option from the list." in page.get_data(as_text=True)
    answer = member.post("/wallet/message", {"address": "nope", "chain_id": "31337"}, headers={"Accept": "application/json"})
    assert answer.status_code == 422 and "not a wallet address" in answer.get_json()["error"]
    key = Account.create()
    answer = member.post("/wallet/message", {"address": key.address, "chain_id": "31337"}, headers={"Accept": "application/json"})
    assert answer.get_json()["message"].split("\n")[1] == key.address


def test_relinking_and_unlinking_sign_out_the_other_sessions_but_not_this_one(app, make_member):
    from tests.conftest import csrf_token_from

    member, first, second = make_member(), Account.create(), Account.create()
    other_device = app.test_client()
    other_device.post("/login", data={"login": member.username, "password": member.password,
                                      "csrf_token": csrf_token_from(other_device)})
    assert other_device.get("/wallet").status_code == 200
    text = message_on(ask_for_message(member, first.address))
    member.post("/wallet/link", {"message": text, "signature": sign(first, text)})
    assert other_device.get("/wallet").status_code == 200  # a first link is no credential change
    text = message_on(ask_for_message(member, second.address))
    response = member.post("/wallet/link", {"message": text, "signature": sign(second, text)})
    assert response.status_code == 303
    assert other_device.get("/wallet").status_code == 303  # signed out
    page = member.client.get("/wallet")
    assert page.status_code == 200 and "your other sessions are signed out" in page.get_data(as_text=True)
    assert member.post("/wallet/unlink").status_code == 303
    page = member.client.get("/wallet").get_data(as_text=True)
    assert f"Your wallet {second.address} is unlinked" in page and "No wallet is linked yet." in page


def test_the_payout_chain_form_redirects_with_its_outcome(make_member):
    member, key = make_member(), Account.create()
    assert member.post("/wallet/payout-chain", {"chain_id": "31337"}).status_code == 303
    assert "Link a wallet before" in member.client.get("/wallet").get_data(as_text=True)
    text = message_on(ask_for_message(member, key.address))
    member.post("/wallet/link", {"message": text, "signature": sign(key, text)})
    member.post("/wallet/payout-chain", {"chain_id": "137"})
    assert "Choose a chain from the list." in member.client.get("/wallet").get_data(as_text=True)
    member.post("/wallet/payout-chain", {"chain_id": "31337"})
    assert "Payouts will go to your wallet on Anvil." in member.client.get("/wallet").get_data(as_text=True)
