"""`flask chain deploy`: our four contracts on the configured chain, their addresses recorded per chain id.

Deployments go through the outbox like every other transaction (one nonce allocator per key). Deploying
again on the same chain reuses each recorded address that still holds code, so the command is safe to
run at every start; a fresh local chain (anvil restarted) gets fresh contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from web3 import Web3

from sapien.chain.client import signer_address, web3_client
from sapien.chain.contracts import call_data, contract_at, deploy_data
from sapien.chain.models import CONTRACT_NAMES, ChainTransaction, ContractDeployment
from sapien.chain.outbox import advance, queue_transaction
from sapien.database import dialect_insert, unit_of_work
from sapien.extensions import db

PARTNER_TOKEN = ("Sapien Partner Reward", "PARTNER")


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class Deployed:
    name: str
    address: str
    reused: bool


def badge_base_uri() -> str:
    """tokenURI = this + token id: the site's badge metadata route (progression views)."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/badges/token/"


def recorded_contracts(chain_id: int) -> dict[str, ContractDeployment]:
    rows = db.session.scalars(select(ContractDeployment).where(ContractDeployment.chain_id == chain_id))
    return {row.name: row for row in rows}


def contract_address(chain_id: int, name: str) -> str | None:
    return db.session.scalar(select(ContractDeployment.address).where(ContractDeployment.chain_id == chain_id, ContractDeployment.name == name))


def _has_code(w3: Web3, address: str | None) -> bool:
    return bool(address) and len(w3.eth.get_code(Web3.to_checksum_address(address))) > 0


def _constructor_args(name: str, admin: str, addresses: dict[str, str]) -> tuple:
    if name == "SapienToken":
        return (admin,)
    if name == "SapienBadge":
        return (badge_base_uri(), admin)
    if name == "SapienPayout":
        return (Web3.to_checksum_address(addresses["SapienToken"]), admin)
    return (*PARTNER_TOKEN, admin)


def deploy_contracts(now: datetime, w3: Web3 | None = None) -> list[Deployed]:
    """Deploy what the configured chain lacks, record every address, and return them in order."""
    w3 = w3 or web3_client(timeout=10)
    chain_id = w3.eth.chain_id
    # The genesis hash names this very chain: a restarted anvil (same id, empty state) gets new keys.
    genesis = w3.eth.get_block(0)["hash"].hex()[:16]
    admin = signer_address()
    recorded = recorded_contracts(chain_id)
    addresses: dict[str, str] = {}
    result = []
    for name in CONTRACT_NAMES:
        known = recorded.get(name)
        if known is not None and _has_code(w3, known.address):
            addresses[name] = known.address
            result.append(Deployed(name, known.address, reused=True))
            continue
        data = deploy_data(name, *_constructor_args(name, admin, addresses))
        tx_id = queue_transaction(key=f"deploy:{chain_id}:{genesis}:{name}", kind="deploy", chain_id=chain_id, to=None, data=data, now=now, extra={"contract": name})
        status = advance(tx_id, now, w3)
        row = db.session.get(ChainTransaction, tx_id, populate_existing=True)
        if status != "confirmed" or not _has_code(w3, row.contract_address):
            raise DeployError(f"deploying {name} failed: {row.last_error or status}")
        _record(chain_id, name, row.contract_address, row.tx_hash, now)
        addresses[name] = row.contract_address
        result.append(Deployed(name, row.contract_address, reused=False))
    _let_the_payout_contract_mint(w3, chain_id, genesis, addresses, now)
    return result


MINTED_BY_PAYOUTS = ("SapienToken", "PartnerToken")


def _let_the_payout_contract_mint(w3: Web3, chain_id: int, genesis: str, addresses: dict[str, str], now: datetime) -> None:
    """Grant SapienPayout the MINTER_ROLE of both tokens, so one `payMinting` transaction pays a whole
    batch of withdrawals (sapien/chain/payouts.py). Skipped where the role is held already."""
    payout = Web3.to_checksum_address(addresses["SapienPayout"])
    for name in MINTED_BY_PAYOUTS:
        token = contract_at(w3, name, addresses[name])
        role = token.functions.MINTER_ROLE().call()
        if token.functions.hasRole(role, payout).call():
            continue
        tx_id = queue_transaction(
            key=f"grant-minter:{chain_id}:{genesis}:{addresses[name]}:{payout}", kind="deploy", chain_id=chain_id,
            to=addresses[name], data=call_data(name, "grantRole", role, payout), now=now, extra={"contract": name, "grant": "MINTER_ROLE"},
        )
        if advance(tx_id, now, w3) != "confirmed":
            row = db.session.get(ChainTransaction, tx_id, populate_existing=True)
            raise DeployError(f"granting {name}'s minter role to SapienPayout failed: {row.last_error}")


def _record(chain_id: int, name: str, address: str, tx_hash: str | None, now: datetime) -> None:
    with unit_of_work() as session:
        statement = dialect_insert(ContractDeployment).values(chain_id=chain_id, name=name, address=address, tx_hash=tx_hash, deployed_at=now)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["chain_id", "name"],
                set_={"address": statement.excluded.address, "tx_hash": statement.excluded.tx_hash, "deployed_at": statement.excluded.deployed_at},
            )
        )


def record_contracts(chain_id: int, addresses: dict[str, str], now: datetime) -> None:
    """Record addresses deployed elsewhere (the test session deploys once and records them per test)."""
    for name, address in addresses.items():
        _record(chain_id, name, address, None, now)
