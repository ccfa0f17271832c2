"""`flask chain deploy`, the chain registry and /healthz's report of the contracts."""

from __future__ import annotations

from sqlalchemy import select

from sapien.chain.models import ContractDeployment
from sapien.extensions import db


def test_deploy_records_the_four_contracts_and_a_second_run_reuses_them(app, anvil_url):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil_url))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        runner = app.test_cli_runner()
        first = runner.invoke(args=["chain", "deploy"])
        assert first.exit_code == 0, first.output
        assert first.output.count("(deployed)") == 4
        with app.app_context():
            recorded = {r.name: r.address for r in db.session.scalars(select(ContractDeployment).where(ContractDeployment.chain_id == 31337))}
        assert set(recorded) == {"SapienToken", "SapienBadge", "SapienPayout", "PartnerToken"}
        assert all(len(w3.eth.get_code(address)) > 0 for address in recorded.values())

        second = runner.invoke(args=["chain", "deploy"])
        assert second.exit_code == 0, second.output
        assert second.output.count("(already deployed)") == 4
        with app.app_context():
            again = {r.name: r.address for r in db.session.scalars(select(ContractDeployment))}
        assert again == recorded

        # The payout contract pays in our token.
        from sapien.chain.contracts import contract_at

        assert contract_at(w3, "SapienPayout", recorded["SapienPayout"]).functions.token().call() == recorded["SapienToken"]
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


def test_deploy_replaces_recorded_contracts_that_are_gone_from_the_chain(app, anvil_url):
    from web3 import Web3

    from sapien.chain.deploy import record_contracts
    from sapien.database import utcnow

    w3 = Web3(Web3.HTTPProvider(anvil_url))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        with app.app_context():  # recorded by an earlier life of the chain (anvil restarted since)
            record_contracts(31337, {"SapienToken": "0x" + "11" * 20}, utcnow())
        result = app.test_cli_runner().invoke(args=["chain", "deploy"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            token = db.session.scalar(select(ContractDeployment.address).where(ContractDeployment.name == "SapienToken"))
        assert token != "0x" + "11" * 20 and len(w3.eth.get_code(token)) > 0
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


def test_deploy_says_so_when_the_chain_is_down(app):
    app.config["CHAIN_RPC_URL"] = "http://127.0.0.1:9"
    result = app.test_cli_runner().invoke(args=["chain", "deploy"])
    assert result.exit_code != 0
    assert "chain unreachable" in result.output


def test_the_registry_knows_anvil_base_base_sepolia_and_polygon(app_ctx):
    from sapien.chain.registry import CHAINS, chain_info, confirmations_for, enabled_chains

    assert {info.name for info in CHAINS.values()} == {"Anvil (local)", "Base", "Base Sepolia", "Polygon"}
    assert set(CHAINS) == {31337, 8453, 84532, 137}
    assert chain_info(8453).tx_url("0xabc") == "https://basescan.org/tx/0xabc"
    assert chain_info(31337).tx_url("0xabc") is None  # anvil has no explorer
    assert [info.chain_id for info in enabled_chains()] == [31337]
    app_ctx.config["CHAIN_ENABLED_IDS"] = "31337,84532"
    assert [info.chain_id for info in enabled_chains()] == [31337, 84532]
    assert confirmations_for(137) == 32 and confirmations_for(31337) == 0
    app_ctx.config["CHAIN_CONFIRMATIONS"] = "3"
    assert confirmations_for(137) == 3


def test_healthz_shows_moderators_the_contracts_deployed_or_not(app, make_member, chain):
    moderator = make_member("mod", role="moderator")
    body = moderator.client.get("/healthz").get_json()
    contracts = body["chain"]["contracts"]
    assert contracts["SapienBadge"] == chain.addresses["SapienBadge"]
    assert set(contracts) == {"SapienToken", "SapienBadge", "SapienPayout", "PartnerToken"}


def test_healthz_lists_contracts_not_deployed_as_missing(app, make_member):
    # The public sees up or down only.
    assert app.test_client().get("/healthz").get_json()["chain"] == {"ok": True}
    moderator = make_member("mod", role="moderator")
    contracts = moderator.client.get("/healthz").get_json()["chain"]["contracts"]
    assert contracts == {"SapienToken": None, "SapienBadge": None, "SapienPayout": None, "PartnerToken": None}
