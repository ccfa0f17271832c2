"""Linking a wallet by Sign-In with Ethereum: every bad message gets its own clear refusal, and what a
member would notice (their wallet, their sessions, their payout chain) changes only on a good one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from eth_account import Account

from sapien.chain.siwe import SiweError
from tests.chain.conftest import ANVIL, NOW, new_member, sign, signed_message, site


def link(user_id, text, signature, now=NOW):
    from sapien.chain import wallets

    return wallets.link_wallet(user_id, text, signature, site(), now)


def refusal(user_id, text, signature, now=NOW) -> str:
    with pytest.raises(SiweError) as caught:
        link(user_id, text, signature, now)
    return str(caught.value)


def test_a_signed_message_links_the_wallet_and_answers_wallet_of(app_ctx, wallet_key):
    from sapien.chain import wallets

    ana = new_member("ana")
    assert wallets.wallet_of(ana) is None
    text, signature = signed_message(ana, wallet_key)
    result = link(ana, text, signature)
    assert result.address == wallet_key.address and not result.relinked
    assert wallets.wallet_of(ana) == wallet_key.address
    assert wallets.payout_chain_of(ana).name == "Anvil"


def test_the_issued_message_is_eip_4361_bound_to_this_site_and_expires_in_ten_minutes(app_ctx, wallet_key):
    from sapien.chain import wallets
    from sapien.chain.siwe import parse_message

    ana = new_member("ana")
    message = parse_message(wallets.start_link(ana, wallet_key.address.lower(), ANVIL, site(), NOW).text())
    assert (message.domain, message.uri, message.chain_id, message.version) == ("sapien.test", "https://sapien.test/wallet", ANVIL, "1")
    assert message.address == wallet_key.address  # a lower-case address comes back checksummed
    assert message.expiration - message.issued_at_time == timedelta(minutes=10)


def test_a_malformed_message_is_refused(app_ctx, wallet_key):
    ana = new_member("ana")
    text, _signature = signed_message(ana, wallet_key)
    broken = text.replace("Version: 1\n", "")
    assert "not a Sign-In with Ethereum message" in refusal(ana, broken, sign(wallet_key, broken))
    assert "not a Sign-In with Ethereum message" in refusal(ana, "hello", sign(wallet_key, "hello"))


def test_a_replayed_message_is_refused_after_it_was_used(app_ctx, wallet_key):
    ana = new_member("ana")
    text, signature = signed_message(ana, wallet_key)
    link(ana, text, signature)
    assert "already used" in refusal(ana, text, signature, NOW + timedelta(seconds=5))


def test_a_nonce_is_single_use_even_for_a_fresh_signature_of_it(app_ctx, wallet_key):
    ana = new_member("ana")
    text, signature = signed_message(ana, wallet_key)
    link(ana, text, signature)
    again = text.replace("Link this wallet", "Link the wallet")
    assert "already used" in refusal(ana, again, sign(wallet_key, again))


def test_a_message_changed_after_signing_is_refused(app_ctx, wallet_key):
    ana = new_member("ana")
    text, signature = signed_message(ana, wallet_key)
    tampered = text.replace("Link this wallet to your Sapien account.", "Link this wallet to your Sapien account!")
    assert "changed after signing" in refusal(ana, tampered, signature)


def test_a_message_for_another_domain_or_page_is_refused(app_ctx, wallet_key):
    ana = new_member("ana")
    text, _ = signed_message(ana, wallet_key)
    other_site = text.replace("sapien.test wants", "evil.test wants")
    assert "another site (evil.test)" in refusal(ana, other_site, sign(wallet_key, other_site))
    other_page = text.replace("URI: https://sapien.test/wallet", "URI: https://sapien.test/elsewhere")
    assert "another page" in refusal(ana, other_page, sign(wallet_key, other_page))


def test_a_message_for_another_chain_is_refused(app_ctx, wallet_key):
    from sapien.chain import wallets

    ana = new_member("ana")
    text, _ = signed_message(ana, wallet_key)
    polygon = text.replace(f"Chain ID: {ANVIL}", "Chain ID: 137")
    assert "Chain 137 is not one Sapien uses" in refusal(ana, polygon, sign(wallet_key, polygon))
    with pytest.raises(SiweError, match="Chain 1 is not one Sapien uses"):
        wallets.start_link(ana, wallet_key.address, 1, site(), NOW)
    app_ctx.config["CHAIN_ENABLED_IDS"] = "31337,137"
    assert "another chain than the one you asked for" in refusal(ana, polygon, sign(wallet_key, polygon))


def test_an_expired_message_is_refused(app_ctx, wallet_key):
    ana = new_member("ana")
    text, signature = signed_message(ana, wallet_key)
    assert "expired" in refusal(ana, text, signature, NOW + timedelta(minutes=10))
    text, signature = signed_message(ana, wallet_key)
    assert link(ana, text, signature, NOW + timedelta(minutes=9, seconds=59)).address == wallet_key.address


def test_an_issue_time_rewritten_to_stay_fresh_is_refused(app_ctx, wallet_key):
    ana = new_member("ana")
    text, _ = signed_message(ana, wallet_key)
    later = text.replace("Issued At: 2026-12-06T12:00:00.000Z", "Issued At: 2026-12-06T12:30:00.000Z")
    assert "issue time" in refusal(ana, later, sign(wallet_key, later))


def test_a_message_signed_by_another_key_is_refused(app_ctx, wallet_key):
    ana = new_member("ana")
    text, _ = signed_message(ana, wallet_key)
    assert "not made by the wallet named in the message" in refusal(ana, text, sign(Account.create(), text))


def test_a_signature_that_is_not_one_is_refused(app_ctx, wallet_key):
    ana = new_member("ana")
    text, signature = signed_message(ana, wallet_key)
    assert "130 hexadecimal digits" in refusal(ana, text, "0x1234")
    assert "could not be read" in refusal(ana, text, "0x" + "00" * 64 + "1b")


def test_another_members_nonce_is_refused(app_ctx, wallet_key):
    ana, bo = new_member("ana"), new_member("bob")
    text, signature = signed_message(ana, wallet_key)
    assert "not issued to you" in refusal(bo, text, signature)
    made_up = text.replace(text.split("Nonce: ")[1].split("\n")[0], "abcdefgh12345678")
    assert "not issued to you" in refusal(ana, made_up, sign(wallet_key, made_up))


def test_a_wallet_linked_to_another_member_is_refused(app_ctx, wallet_key):
    from sapien.chain import wallets

    ana, bo = new_member("ana"), new_member("bob")
    link(ana, *signed_message(ana, wallet_key))
    assert "already linked to another member" in refusal(bo, *signed_message(bo, wallet_key))
    assert wallets.wallet_of(bo) is None and wallets.wallet_of(ana) == wallet_key.address


def test_relinking_needs_a_fresh_signature_and_signs_out_other_sessions(app_ctx, wallet_key):
    from sapien.accounts import service as accounts
    from sapien.chain import wallets

    ana = new_member("ana")
    link(ana, *signed_message(ana, wallet_key))
    version = accounts.get_user(ana).session_version
    second = Account.create()
    result = link(ana, *signed_message(ana, second))
    assert result.relinked and result.previous_address == wallet_key.address
    assert wallets.wallet_of(ana) == second.address
    assert accounts.get_user(ana).session_version == version + 1
    # Linking the wallet already linked changes nothing, sessions included.
    assert link(ana, *signed_message(ana, second)).unchanged
    assert accounts.get_user(ana).session_version == version + 1


def test_unlinking_frees_the_wallet_and_signs_out_other_sessions(app_ctx, wallet_key):
    from sapien.accounts import service as accounts
    from sapien.chain import wallets

    ana, bo = new_member("ana"), new_member("bob")
    link(ana, *signed_message(ana, wallet_key))
    version = accounts.get_user(ana).session_version
    assert wallets.unlink_wallet(ana, NOW) == wallet_key.address
    assert wallets.wallet_of(ana) is None
    assert accounts.get_user(ana).session_version == version + 1
    with pytest.raises(SiweError, match="no linked wallet"):
        wallets.unlink_wallet(ana, NOW)
    assert link(bo, *signed_message(bo, wallet_key)).address == wallet_key.address


def test_the_payout_chain_is_one_of_the_enabled_chains(app_ctx, wallet_key):
    from sapien.chain import wallets

    ana = new_member("ana")
    with pytest.raises(SiweError, match="Link a wallet before"):
        wallets.set_payout_chain(ana, ANVIL)
    link(ana, *signed_message(ana, wallet_key))
    with pytest.raises(SiweError, match="Chain 8453 is not one Sapien uses"):
        wallets.set_payout_chain(ana, 8453)
    app_ctx.config["CHAIN_ENABLED_IDS"] = "31337,8453"
    assert wallets.set_payout_chain(ana, 8453).name == "Base"
    assert wallets.payout_chain_of(ana).chain_id == 8453
    app_ctx.config["CHAIN_ENABLED_IDS"] = "31337"  # Base turned off: no payout chain until they pick again
    assert wallets.payout_chain_of(ana) is None


def test_a_bad_address_is_refused_when_asking_for_a_message(app_ctx):
    from sapien.chain import wallets

    ana = new_member("ana")
    with pytest.raises(SiweError, match="not a wallet address"):
        wallets.start_link(ana, "0x1234", ANVIL, site(), NOW)
