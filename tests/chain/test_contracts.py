"""The contracts' rules, on anvil: roles, soulbound badges, one token per (member, badge), batch payouts."""

from __future__ import annotations

import pytest
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from sapien.chain.contracts import badge_token_id, revert_reason
from tests.chain.conftest import MEMBER_ADDRESS, OTHER_ADDRESS, THIRD_ADDRESS

ERC5192_INTERFACE_ID = bytes.fromhex("b45a3c0e")


def signer(chain) -> str:
    from sapien.chain.client import signer_address

    return signer_address()


def test_only_the_minter_role_mints_reward_and_partner_tokens(chain):
    for name in ("SapienToken", "PartnerToken"):
        token = chain.contract(name)
        with pytest.raises(ContractLogicError):
            token.functions.mint(MEMBER_ADDRESS, 5).call({"from": MEMBER_ADDRESS})
        chain.transact(token.functions.mint(MEMBER_ADDRESS, 5), signer(chain))
        assert token.functions.balanceOf(MEMBER_ADDRESS).call() == 5
        # The admin can hand the role to another key, which may then mint.
        chain.transact(token.functions.grantRole(token.functions.MINTER_ROLE().call(), OTHER_ADDRESS), signer(chain))
        chain.transact(token.functions.mint(OTHER_ADDRESS, 7), OTHER_ADDRESS)
        assert token.functions.balanceOf(OTHER_ADDRESS).call() == 7
    assert chain.contract("SapienToken").functions.symbol().call() == "SAPIEN"
    assert chain.contract("PartnerToken").functions.symbol().call() == "PARTNER"


def test_the_tokens_count_in_the_ledgers_base_unit_so_big_balances_fit(chain, app_ctx):
    from sapien.i18n import TOKEN_DECIMALS, TOKEN_UNIT
    from sapien.ledger import service as ledger
    from tests.chain.conftest import NOW, new_member

    for name in ("SapienToken", "PartnerToken"):
        assert chain.contract(name).functions.decimals().call() == TOKEN_DECIMALS == 6
    # A million tokens on one balance (with 18 decimals a 64-bit ledger amount stops at 9.2 tokens).
    member = new_member("whale")
    ledger.credit(member, "token", 1_000_000 * TOKEN_UNIT, kind="test_grant", key="whale", now=NOW)
    assert ledger.balance(member, "token") == 1_000_000 * TOKEN_UNIT


def test_badges_are_soulbound_every_transfer_and_approval_reverts(chain):
    badge = chain.contract("SapienBadge")
    chain.transact(badge.functions.mint(MEMBER_ADDRESS, 1, "first-label"), signer(chain))
    token_id = badge_token_id(1, "first-label")
    assert badge.functions.ownerOf(token_id).call() == MEMBER_ADDRESS
    assert badge.functions.locked(token_id).call() is True
    assert badge.functions.supportsInterface(ERC5192_INTERFACE_ID).call() is True

    for attempt in (
        badge.functions.transferFrom(MEMBER_ADDRESS, OTHER_ADDRESS, token_id),
        badge.functions.safeTransferFrom(MEMBER_ADDRESS, OTHER_ADDRESS, token_id),
        badge.functions.approve(OTHER_ADDRESS, token_id),
        badge.functions.setApprovalForAll(OTHER_ADDRESS, True),
    ):
        with pytest.raises(ContractLogicError) as refused:
            attempt.call({"from": MEMBER_ADDRESS})
        assert revert_reason(refused.value.data) == "Soulbound()"
    # Not even the platform can move it.
    with pytest.raises(ContractLogicError):
        badge.functions.transferFrom(MEMBER_ADDRESS, OTHER_ADDRESS, token_id).call({"from": signer(chain)})
    assert badge.functions.ownerOf(token_id).call() == MEMBER_ADDRESS


def test_the_token_id_comes_from_member_and_badge_so_a_second_mint_reverts(chain):
    badge = chain.contract("SapienBadge")
    assert badge.functions.tokenIdFor(42, "streak-7").call() == badge_token_id(42, "streak-7")
    chain.transact(badge.functions.mint(MEMBER_ADDRESS, 42, "streak-7"), signer(chain))
    with pytest.raises(ContractLogicError) as refused:
        badge.functions.mint(MEMBER_ADDRESS, 42, "streak-7").call({"from": signer(chain)})
    assert revert_reason(refused.value.data) == "AlreadyMinted(uint256)"
    with pytest.raises(ContractLogicError):  # to another wallet neither: the id is taken
        badge.functions.mint(OTHER_ADDRESS, 42, "streak-7").call({"from": signer(chain)})
    chain.transact(badge.functions.mint(MEMBER_ADDRESS, 42, "streak-30"), signer(chain))
    assert badge.functions.balanceOf(MEMBER_ADDRESS).call() == 2


def test_only_the_minter_mints_and_burns_badges_and_a_burn_revokes(chain):
    badge = chain.contract("SapienBadge")
    with pytest.raises(ContractLogicError):
        badge.functions.mint(MEMBER_ADDRESS, 3, "helper").call({"from": MEMBER_ADDRESS})
    chain.transact(badge.functions.mint(MEMBER_ADDRESS, 3, "helper"), signer(chain))
    token_id = badge_token_id(3, "helper")
    with pytest.raises(ContractLogicError):  # the holder cannot burn it away either
        badge.functions.burn(token_id).call({"from": MEMBER_ADDRESS})
    chain.transact(badge.functions.burn(token_id), signer(chain))
    with pytest.raises(ContractLogicError):
        badge.functions.ownerOf(token_id).call()
    assert badge.functions.balanceOf(MEMBER_ADDRESS).call() == 0


def test_token_uri_points_at_the_sites_metadata_route(chain, app_ctx):
    badge = chain.contract("SapienBadge")
    chain.transact(badge.functions.mint(MEMBER_ADDRESS, 9, "first-label"), signer(chain))
    token_id = badge_token_id(9, "first-label")
    base = app_ctx.config["PUBLIC_BASE_URL"].rstrip("/")
    assert badge.functions.tokenURI(token_id).call() == f"{base}/badges/token/{token_id}"
    with pytest.raises(ContractLogicError):  # no URI for a token that does not exist
        badge.functions.tokenURI(token_id + 1).call()


def test_a_batch_payout_pays_every_member_once_in_one_transaction(chain):
    token, payout = chain.contract("SapienToken"), chain.contract("SapienPayout")
    chain.transact(token.functions.mint(payout.address, 1_000), signer(chain))
    recipients, amounts = [MEMBER_ADDRESS, OTHER_ADDRESS, THIRD_ADDRESS], [100, 250, 7]
    batch = b"\x01" * 32
    receipt = chain.transact(payout.functions.pay(batch, recipients, amounts), signer(chain))
    assert receipt["status"] == 1
    assert [token.functions.balanceOf(a).call() for a in recipients] == amounts
    assert token.functions.balanceOf(payout.address).call() == 1_000 - sum(amounts)
    (paid,) = payout.events.BatchPaid().process_receipt(receipt, errors=DISCARD)  # the Transfer logs are not ours
    assert (paid["args"]["recipients"], paid["args"]["total"]) == (3, 357)
    assert payout.functions.paid(batch).call() is True

    with pytest.raises(ContractLogicError):  # the same batch never pays twice
        payout.functions.pay(batch, recipients, amounts).call({"from": signer(chain)})
    with pytest.raises(ContractLogicError):  # only the payer role pays
        payout.functions.pay(b"\x02" * 32, recipients, amounts).call({"from": MEMBER_ADDRESS})
    with pytest.raises(ContractLogicError):  # one amount per recipient
        payout.functions.pay(b"\x03" * 32, recipients, amounts[:2]).call({"from": signer(chain)})
    with pytest.raises(ContractLogicError):  # no more than it holds
        payout.functions.pay(b"\x04" * 32, [MEMBER_ADDRESS], [10_000]).call({"from": signer(chain)})


def test_a_minting_batch_payout_pays_once_and_only_with_the_tokens_minter_role(chain):
    token, payout = chain.contract("SapienToken"), chain.contract("SapienPayout")
    recipients, amounts = [MEMBER_ADDRESS, OTHER_ADDRESS], [11, 31]
    batch = b"\x05" * 32
    # The deployment granted the payout contract the minter role of both tokens.
    assert token.functions.hasRole(token.functions.MINTER_ROLE().call(), payout.address).call() is True
    receipt = chain.transact(payout.functions.payMinting(batch, token.address, recipients, amounts), signer(chain))
    (minted,) = payout.events.BatchMinted().process_receipt(receipt, errors=DISCARD)
    assert (minted["args"]["token"], minted["args"]["recipients"], minted["args"]["total"]) == (token.address, 2, 42)
    assert [token.functions.balanceOf(a).call() for a in recipients] == amounts
    assert token.functions.totalSupply().call() == 42  # minted, not taken from a float

    with pytest.raises(ContractLogicError) as refused:  # the same batch id never pays twice, by either function
        payout.functions.payMinting(batch, token.address, recipients, amounts).call({"from": signer(chain)})
    assert revert_reason(refused.value.data) == "BatchAlreadyPaid(bytes32)"
    with pytest.raises(ContractLogicError):
        payout.functions.pay(batch, recipients, amounts).call({"from": signer(chain)})
    with pytest.raises(ContractLogicError):  # only the payer role pays
        payout.functions.payMinting(b"\x06" * 32, token.address, recipients, amounts).call({"from": MEMBER_ADDRESS})
    partner = chain.contract("PartnerToken")
    chain.transact(partner.functions.revokeRole(partner.functions.MINTER_ROLE().call(), payout.address), signer(chain))
    with pytest.raises(ContractLogicError):  # a token that did not grant it its minter role cannot be paid out
        payout.functions.payMinting(b"\x07" * 32, partner.address, recipients, amounts).call({"from": signer(chain)})
