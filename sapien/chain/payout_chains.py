"""The chains a member can link a wallet on and choose for payouts: the known ones, enabled by config.

`enabled_chains` is the one place that answers "which chains?" for wallets; when the chain registry
(contracts, RPC, confirmations) lands, it answers from there instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app


@dataclass(frozen=True)
class PayoutChain:
    chain_id: int
    name: str
    explorer_url: str


KNOWN_CHAINS = (
    PayoutChain(31337, "Anvil", ""),
    PayoutChain(8453, "Base", "https://basescan.org"),
    PayoutChain(84532, "Base Sepolia", "https://sepolia.basescan.org"),
    PayoutChain(137, "Polygon", "https://polygonscan.com"),
)


def enabled_chain_ids() -> tuple[int, ...]:
    """`CHAIN_ENABLED_IDS` read as numbers; a value that is no chain id is a configuration error."""
    raw = current_app.config.get("CHAIN_ENABLED_IDS", "31337")
    return tuple(int(part) for part in str(raw).replace(" ", "").split(",") if part)


def enabled_chains() -> list[PayoutChain]:
    enabled = enabled_chain_ids()
    return [chain for chain in KNOWN_CHAINS if chain.chain_id in enabled]


def chain_named(chain_id: int) -> PayoutChain | None:
    return next((chain for chain in KNOWN_CHAINS if chain.chain_id == chain_id), None)
