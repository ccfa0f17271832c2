"""On anvil: the MerkleDistributor's rules (wrong proof, claim twice, after the deadline, clawback), the
publish job (run twice) deploying and funding through the outbox, a member claiming with the call data
the site prepares, and wallet activity read from the chain (transaction count, funding source)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from web3.exceptions import ContractLogicError

from jobs.airdrops import publish_airdrop as publish_job
from jobs.airdrops import run_snapshot as run_job
from sapien.airdrops import claims, freezing, merkle, snapshots
from sapien.airdrops.config import parse_config
from sapien.airdrops.models import AirdropSnapshot
from sapien.airdrops.sybil import reason_text
from sapien.chain.contracts import contract_at, deploy_data, revert_reason
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT
from tests.airdrops.conftest import add_member, base_config

FUNDED = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's first account: the platform signer
STRANGER = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"  # anvil account 4


def chain_now(chain) -> datetime:
    return datetime.fromtimestamp(chain.w3.eth.get_block("latest")["timestamp"], UTC)


def send_from(chain, key, to: str, data: str):
    """Send a transaction signed by `key` (as a member's wallet would) and return its receipt."""
    w3 = chain.w3
    transaction = {"to": to, "data": data, "chainId": chain.chain_id, "nonce": w3.eth.get_transaction_count(key.address), "gas": 300_000,
                   "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9, "maxPriorityFeePerGas": 10**9, "type": 2}
    signed = key.sign_transaction(transaction)
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=10)


def fund_gas(chain, address: str, value: int = 10**18) -> None:
    chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_transaction({"from": STRANGER, "to": address, "value": value}), timeout=10)


def deploy_distributor(chain, values, deadline: int) -> tuple:
    tree = merkle.build(values)
    token = chain.contract("SapienToken")
    data = deploy_data("MerkleDistributor", token.address, tree.root, deadline, FUNDED, FUNDED)
    receipt = chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_transaction({"from": FUNDED, "data": data}), timeout=10)
    distributor = contract_at(chain.w3, "MerkleDistributor", receipt["contractAddress"])
    chain.transact(token.functions.mint(distributor.address, sum(amount for _, amount in values)), FUNDED)
    return tree, distributor, token


def test_the_contract_refuses_a_wrong_proof_a_second_claim_a_late_claim_and_an_early_clawback(chain):
    members = [Account.create() for _ in range(3)]
    values = [(member.address, (index + 1) * TOKEN_UNIT) for index, member in enumerate(members)]
    deadline = int(chain_now(chain).timestamp()) + 3600
    tree, distributor, token = deploy_distributor(chain, values, deadline)
    first = members[0].address

    def refused(function, sender=STRANGER) -> str:
        with pytest.raises(ContractLogicError) as error:
            function.call({"from": sender})
        return revert_reason(error.value.data)

    # A wrong proof, or the right proof for another amount, is refused.
    assert refused(distributor.functions.claim(first, values[0][1], tree.proof(1))) == "InvalidProof()"
    assert refused(distributor.functions.claim(first, values[0][1] + 1, tree.proof(0))) == "InvalidProof()"
    assert refused(distributor.functions.clawback(), FUNDED) == "ClaimWindowOpen()"
    chain.transact(distributor.functions.claim(first, values[0][1], tree.proof(0)), STRANGER)  # anyone may submit it; tokens go to the member
    assert token.functions.balanceOf(first).call() == values[0][1]
    assert distributor.functions.isClaimed(first).call() is True
    assert refused(distributor.functions.claim(first, values[0][1], tree.proof(0))) == "AlreadyClaimed(address)"
    chain.w3.provider.make_request("evm_increaseTime", [3601])
    chain.w3.provider.make_request("evm_mine", [])
    assert refused(distributor.functions.claim(members[1].address, values[1][1], tree.proof(1))) == "ClaimWindowClosed()"
    assert refused(distributor.functions.clawback(), STRANGER) == "NotAdmin()"
    before = token.functions.balanceOf(FUNDED).call()
    chain.transact(distributor.functions.clawback(), FUNDED)
    assert token.functions.balanceOf(FUNDED).call() - before == values[1][1] + values[2][1]
    assert token.functions.balanceOf(distributor.address).call() == 0
    assert distributor.functions.totalClaimed().call() == values[0][1]


def test_a_frozen_snapshot_is_published_by_a_job_and_a_member_claims_with_the_sites_call_data(app, chain, make_member):
    key = Account.create()
    member = make_member("claimer")
    with app.app_context():
        from sapien.chain.wallet_models import Wallet
        from sapien.database import unit_of_work, utcnow
        from sapien.ledger.service import credit

        chain.w3.provider.make_request("evm_mine", [])
        as_of = max(chain_now(chain), utcnow())  # after the member signed up
        now = as_of + timedelta(seconds=1)
        credit(member.id, "points", 300, kind="test", key="claimer-points", now=as_of - timedelta(hours=1))
        with unit_of_work() as session:
            session.add(Wallet(user_id=member.id, address=key.address, linked_at=as_of - timedelta(hours=1)))
        other, _ = add_member("other", points=100, at=as_of - timedelta(hours=1))
        mod1, _ = add_member("mod1", role="moderator", at=as_of - timedelta(hours=1))
        mod2, _ = add_member("mod2", role="moderator", at=as_of - timedelta(hours=1))
        snapshot = snapshots.create_snapshot(parse_config(base_config(as_of=as_of.isoformat(), weights={"points": 1}), now), mod1, now)
        snapshot_id = snapshot.id
        assert run_job(snapshot_id) == "done"
        freezing.propose_freeze(snapshot_id, mod1, now)
        freezing.approve_freeze(snapshot_id, mod2, now)
        claims.request_publish(snapshot_id, mod1, now + timedelta(days=30), now)
        address = publish_job(snapshot_id)
        assert publish_job(snapshot_id) == address  # safe twice: one distributor, funded once
        snapshot = db.session.get(AirdropSnapshot, snapshot_id, populate_existing=True)
        assert snapshot.distributor_address == address and snapshot.funded_at is not None
        token = chain.contract("SapienToken")
        assert token.functions.balanceOf(address).call() == int(snapshot.allocated_amount) == 1000 * TOKEN_UNIT
        root = snapshot.merkle_root
        with pytest.raises(claims.ClaimError, match="already published"):
            claims.request_publish(snapshot_id, mod1, now + timedelta(days=30), now)

    response = member.client.get(f"/airdrops/{snapshot_id}/claim")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[page.find("<main"):][:1500]
    assert "750 SAPIEN" in page and "Not claimed yet." in page, page[page.find("my-allocation"):][:1500]
    to = re.search(r'id="claim-to">([^<]+)<', page).group(1)
    data = re.search(r'id="claim-calldata">([^<]+)<', page).group(1)
    fund_gas(chain, key.address)
    receipt = send_from(chain, key, to, data)
    assert receipt["status"] == 1
    assert chain.contract("SapienToken").functions.balanceOf(key.address).call() == 750 * TOKEN_UNIT
    page = member.client.get(f"/airdrops/{snapshot_id}/claim").get_data(as_text=True)
    assert "Claimed." in page
    public = member.client.get(f"/airdrops/{snapshot_id}").get_data(as_text=True)
    assert "75%" in public and address in public and root in public
    # The same call again reverts: claimed once.
    assert send_from(chain, key, to, data)["status"] == 0


def test_wallet_activity_is_read_as_of_a_time_and_a_shared_funding_source_is_merged(app_ctx, chain):
    from sapien.chain.airdrop_chain import wallet_activity

    funder, keys = STRANGER, [Account.create() for _ in range(3)]
    for key in keys[:2]:
        fund_gas(chain, key.address)  # both funded from the same address
    chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_transaction({"from": "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", "to": keys[2].address, "value": 10**18}), timeout=10)
    send_from(chain, keys[0], keys[0].address, "0x")
    chain.w3.provider.make_request("evm_increaseTime", [5])
    chain.w3.provider.make_request("evm_mine", [])
    as_of = chain_now(chain)
    activity = wallet_activity([key.address for key in keys], as_of)
    assert activity[keys[0].address].tx_count == 1 and activity[keys[1].address].tx_count == 0
    assert activity[keys[0].address].funder == funder == activity[keys[1].address].funder
    assert activity[keys[2].address].funder != funder and activity[keys[0].address].first_seen is not None

    first, _ = add_member("first", points=10, wallet=keys[0].address, at=as_of - timedelta(hours=1))
    second, _ = add_member("second", points=10, wallet=keys[1].address, at=as_of - timedelta(hours=1))
    third, _ = add_member("third", points=10, wallet=keys[2].address, at=as_of - timedelta(hours=1))
    snapshot = snapshots.create_snapshot(parse_config(base_config(as_of=as_of.isoformat(), weights={"points": 1, "wallet_tx_count": 1}), as_of), None, as_of)
    assert run_job(snapshot.id) == "done"
    rows = {entry.user_id: entry for entry, _name in snapshots.entries(snapshot.id)}
    assert rows[second].excluded_rule == "shared_funding_source"
    assert reason_text(rows[second].excluded_reason) == "Its wallet was funded from the same address as member first's."
    assert rows[first].values["wallet_tx_count"] == 1 and rows[first].excluded_rule is None and rows[third].excluded_rule is None
    assert int(rows[first].amount) > int(rows[third].amount)
