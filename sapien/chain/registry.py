"""The chains we know: id, name, the variable holding its RPC URL, its explorer, how many confirmations
a transaction needs there, and whether members may use it (CHAIN_ENABLED_IDS)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app


@dataclass(frozen=True)
class ChainInfo:
    chain_id: int
    name: str
    rpc_env: str  # the environment variable with this chain's RPC URL
    explorer_url: str  # "" when the chain has no public explorer
    confirmations: int  # blocks on top of the receipt's before a transaction counts as done

    def tx_url(self, tx_hash: str | None) -> str | None:
        return f"{self.explorer_url}/tx/{tx_hash}" if self.explorer_url and tx_hash else None

    def address_url(self, address: str | None) -> str | None:
        return f"{self.explorer_url}/address/{address}" if self.explorer_url and address else None

    @property
    def enabled(self) -> bool:
        return self.chain_id in enabled_chain_ids()


CHAINS: dict[int, ChainInfo] = {
    info.chain_id: info
    for info in (
        # anvil mines each transaction at once and never reorganises: its receipt is final.
        ChainInfo(31337, "Anvil (local)", "CHAIN_RPC_URL", "", 0),
        ChainInfo(8453, "Base", "BASE_RPC_URL", "https://basescan.org", 5),
        ChainInfo(84532, "Base Sepolia", "BASE_SEPOLIA_RPC_URL", "https://sepolia.basescan.org", 2),
        ChainInfo(137, "Polygon", "POLYGON_RPC_URL", "https://polygonscan.com", 32),
    )
}


def enabled_chain_ids() -> set[int]:
    return {int(part) for part in str(current_app.config.get("CHAIN_ENABLED_IDS", "31337")).split(",") if part.strip()}


def chain_info(chain_id: int) -> ChainInfo:
    """The registry's entry, or a plain one for a chain we do not list (no explorer, no confirmations)."""
    return CHAINS.get(chain_id) or ChainInfo(chain_id, f"Chain {chain_id}", "CHAIN_RPC_URL", "", 0)


def enabled_chains() -> list[ChainInfo]:
    return [info for info in CHAINS.values() if info.enabled]


def confirmations_for(chain_id: int) -> int:
    """CHAIN_CONFIRMATIONS when set, else the registry's count for the chain."""
    configured = current_app.config.get("CHAIN_CONFIRMATIONS")
    return int(configured) if configured not in (None, "") else chain_info(chain_id).confirmations
