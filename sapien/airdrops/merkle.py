"""OpenZeppelin `StandardMerkleTree` with leaf encoding ["address", "uint256"], built fast in Python.

The same tree, root, proofs and dump as @openzeppelin/merkle-tree 1.0.x (DESIGN rule 4):
- a leaf is keccak256(keccak256(abi.encode(address, uint256))): hand-packed here as 32 bytes of
  left-padded address and 32 bytes of big-endian amount, so no ABI encoder runs per leaf;
- leaves are sorted by hash; the tree is an array of 2n-1 nodes with leaf i at index len-1-i and node i
  the hash of its children 2i+1 and 2i+2, the smaller one first (sorted pairs);
- a proof walks from a leaf to the root, collecting each sibling;
- the dump is `{"format": "standard-v1", "leafEncoding": [...], "tree": [...], "values": [...]}` with
  values in the caller's order, each with its `treeIndex`.

keccak comes from the C extension in safe-pysha3 (6x faster per call than pycryptodome), falling back to
pycryptodome through eth-hash when it is missing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

try:  # pragma: no cover - which backend is installed
    from sha3 import keccak_256 as _keccak_new

    def keccak(data: bytes) -> bytes:
        return _keccak_new(data).digest()

except ImportError:  # pragma: no cover
    from eth_hash.auto import keccak  # type: ignore[assignment]

LEAF_ENCODING = ["address", "uint256"]
FORMAT = "standard-v1"
_ZERO12 = bytes(12)


class MerkleError(ValueError):
    pass


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while millions of acyclic lists and bytes are built (it would walk them
    again and again for nothing: about a third of the time at 1,000,000 leaves)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def leaf_hash(address: str, amount: int) -> bytes:
    """keccak256(keccak256(abi.encode(address, amount))) with the encoding packed by hand."""
    raw = address[2:] if address[:2] in ("0x", "0X") else address
    if len(raw) != 40:
        raise MerkleError(f"not an address: {address!r}")
    if amount < 0 or amount >= 1 << 256:
        raise MerkleError(f"not a uint256: {amount!r}")
    return keccak(keccak(_ZERO12 + bytes.fromhex(raw) + amount.to_bytes(32, "big")))


@dataclass
class StandardTree:
    """`values` in the caller's order; `tree` the node hashes; `tree_index[i]` where value i's leaf sits."""

    values: list[tuple[str, int]]
    tree: list[bytes]
    tree_index: list[int]

    @property
    def root(self) -> bytes:
        return self.tree[0]

    @property
    def root_hex(self) -> str:
        return "0x" + self.tree[0].hex()

    def proof(self, value_index: int) -> list[bytes]:
        tree = self.tree
        i = self.tree_index[value_index]
        proof = []
        while i > 0:
            proof.append(tree[i + 1 if i & 1 else i - 1])
            i = (i - 1) >> 1
        return proof

    def proof_hex(self, value_index: int) -> list[str]:
        return ["0x" + node.hex() for node in self.proof(value_index)]

    def all_proofs(self) -> list[list[bytes]]:
        """Every value's proof, in value order (the bench builds them all)."""
        tree = self.tree
        out = []
        append = out.append
        with paused_gc():
            for i in self.tree_index:
                proof = []
                push = proof.append
                while i > 0:
                    push(tree[i + 1 if i & 1 else i - 1])
                    i = (i - 1) >> 1
                append(proof)
        return out

    def dump(self) -> dict:
        """The standard-v1 dump that `StandardMerkleTree.load` in the OpenZeppelin library accepts."""
        return {
            "format": FORMAT,
            "leafEncoding": list(LEAF_ENCODING),
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [{"value": [address, str(amount)], "treeIndex": index} for (address, amount), index in zip(self.values, self.tree_index, strict=True)],
        }


def build(values: Sequence[tuple[str, int]]) -> StandardTree:
    """The tree of (address, amount) pairs, exactly as `StandardMerkleTree.of(values, LEAF_ENCODING)`."""
    if not values:
        raise MerkleError("a Merkle tree needs at least one leaf")
    with paused_gc():
        return _build(values)


def _build(values: Sequence[tuple[str, int]]) -> StandardTree:
    hashes = [leaf_hash(address, amount) for address, amount in values]
    order = sorted(range(len(hashes)), key=hashes.__getitem__)
    n = len(hashes)
    size = 2 * n - 1
    tree: list[bytes] = [b""] * size
    tree_index = [0] * n
    for position, value_index in enumerate(order):
        at = size - 1 - position
        tree[at] = hashes[value_index]
        tree_index[value_index] = at
    for i in range(size - 1 - n, -1, -1):
        left, right = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = keccak(left + right if left <= right else right + left)
    return StandardTree(values=list(values), tree=tree, tree_index=tree_index)


def verify(root: bytes, address: str, amount: int, proof: Sequence[bytes]) -> bool:
    """What `MerkleProof.verify` does on chain."""
    node = leaf_hash(address, amount)
    for sibling in proof:
        node = keccak(node + sibling if node <= sibling else sibling + node)
    return node == root


def load(dump: dict) -> StandardTree:
    """A tree back from its dump, checked: the right format and encoding, every node consistent."""
    if dump.get("format") != FORMAT or dump.get("leafEncoding") != LEAF_ENCODING:
        raise MerkleError("not a standard-v1 dump with leaf encoding [address, uint256]")
    tree = [bytes.fromhex(node[2:]) for node in dump["tree"]]
    values = [(item["value"][0], int(item["value"][1])) for item in dump["values"]]
    indexes = [int(item["treeIndex"]) for item in dump["values"]]
    rebuilt = build(values)
    if rebuilt.tree != tree:
        raise MerkleError("the dump's tree does not match its values")
    return StandardTree(values=values, tree=tree, tree_index=indexes)
