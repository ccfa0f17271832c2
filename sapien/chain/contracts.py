"""Our contracts as Python sees them: ABI and bytecode from the solc build (contracts/build, made by
`make setup` from contracts/*.sol), call data, and the badge token id rule."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from web3 import Web3

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent.parent / "contracts" / "build"


class ContractsNotBuilt(RuntimeError):
    pass


@cache
def artifact(name: str) -> dict:
    """`{"abi": [...], "bytecode": "0x…"}` of a contract; the build outputs are not in git."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise ContractsNotBuilt(f"{path} is missing: run `make setup` (or `node contracts/build.js`)")
    return json.loads(path.read_text())


def contract_at(w3: Web3, name: str, address: str):
    return w3.eth.contract(address=to_checksum_address(address), abi=artifact(name)["abi"])


@cache
def _unbound(name: str):
    return Web3().eth.contract(abi=artifact(name)["abi"])


def call_data(name: str, function: str, *args) -> str:
    """The `data` of a transaction calling `function(*args)` on contract `name`."""
    return _unbound(name).encode_abi(function, args=list(args))


def deploy_data(name: str, *constructor_args) -> str:
    """Bytecode followed by the ABI-encoded constructor arguments."""
    found = artifact(name)
    constructor = next((item for item in found["abi"] if item["type"] == "constructor"), {"inputs": []})
    types = [item["type"] for item in constructor["inputs"]]
    return found["bytecode"] + abi_encode(types, list(constructor_args)).hex()


def badge_token_id(member_id: int, badge_slug: str) -> int:
    """The same rule as `SapienBadge.tokenIdFor`: keccak256(abi.encode(memberId, badgeSlug))."""
    return int.from_bytes(keccak(abi_encode(["uint256", "string"], [member_id, badge_slug])), "big")


@cache
def _error_selectors() -> dict[str, str]:
    """The 4-byte selector of every custom error our contracts (and OpenZeppelin's) can revert with."""
    found = {}
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        for item in json.loads(path.read_text())["abi"]:
            if item["type"] == "error":
                signature = f"{item['name']}({','.join(arg['type'] for arg in item['inputs'])})"
                found["0x" + keccak(text=signature)[:4].hex()] = signature
    return found


def revert_reason(data: str | None) -> str | None:
    """`ERC721InvalidSender(address)` for revert data starting with that error's selector."""
    if not data or not isinstance(data, str) or len(data) < 10:
        return None
    return _error_selectors().get(data[:10].lower())
