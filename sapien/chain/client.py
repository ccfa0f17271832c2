"""The web3 client, built from CHAIN_RPC_URL."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from flask import current_app
from web3 import Web3


def web3_client(timeout: float = 5.0) -> Web3:
    """One client per process, URL and timeout: its HTTP session keeps the connection open, and it asks the
    node's chain id once (web3 asks it before every transaction otherwise); a URL's chain does not change."""
    url = current_app.config["CHAIN_RPC_URL"]
    clients = current_app.extensions.setdefault("sapien_web3_clients", {})
    key = (url, timeout)
    if key not in clients:
        provider = Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                                     cacheable_requests={"eth_chainId"}, request_cache_validation_threshold=None)
        clients[key] = Web3(provider)
    return clients[key]


def signer_address() -> str:
    return Account.from_key(current_app.config["CHAIN_SIGNER_KEY"]).address


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    chain_id: int | None = None
    block_number: int | None = None
    error: str = ""


def chain_status(timeout: float = 2.0) -> ChainStatus:
    try:
        w3 = web3_client(timeout=timeout)
        return ChainStatus(ok=True, chain_id=w3.eth.chain_id, block_number=w3.eth.block_number)
    except Exception as error:  # noqa: BLE001 - any failure to reach the node means "down"
        return ChainStatus(ok=False, error=type(error).__name__)


def current_chain_id() -> int:
    """The configured node's chain id (asked once per process and URL: a URL's chain does not change)."""
    known = current_app.extensions.setdefault("sapien_chain_ids", {})
    url = current_app.config["CHAIN_RPC_URL"]
    if url not in known:
        known[url] = web3_client().eth.chain_id
    return known[url]
