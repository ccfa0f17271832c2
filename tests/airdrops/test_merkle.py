"""The tree is OpenZeppelin's StandardMerkleTree: the npm library loads our dump and gets the same root,
and accepts our proofs; our proofs verify the way MerkleProof does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from sapien.airdrops import merkle

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const fs = require("fs");
const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const tree = StandardMerkleTree.load(input.dump);
tree.validate();
const rebuilt = StandardMerkleTree.of(input.dump.values.map((item) => item.value), ["address", "uint256"]);
const proofsOk = input.proofs.every((proof, i) => StandardMerkleTree.verify(tree.root, ["address", "uint256"], input.dump.values[i].value, proof));
console.log(JSON.stringify({ root: tree.root, rebuilt: rebuilt.root, proofsOk, firstProof: tree.getProof(0) }));
"""


def test_the_openzeppelin_library_loads_the_dump_with_the_same_root(tmp_path):
    values = [(Account.create().address, amount) for amount in (1, 10**18, 5 * 10**21, 7, 7, 123456789)]
    tree = merkle.build(values)
    data = tmp_path / "tree.json"
    data.write_text(json.dumps({"dump": tree.dump(), "proofs": [tree.proof_hex(i) for i in range(len(values))]}))
    script = tmp_path / "check.js"
    script.write_text(CHECK)
    out = subprocess.run([shutil.which("node"), str(script), str(data)], cwd=ROOT, env={**os.environ, "NODE_PATH": str(ROOT / "node_modules")},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["root"] == tree.root_hex == found["rebuilt"]
    assert found["proofsOk"] is True
    assert found["firstProof"] == tree.proof_hex(0)


def test_proofs_verify_and_a_changed_amount_does_not():
    values = [(Account.create().address, index + 1) for index in range(33)]
    tree = merkle.build(values)
    for index, (address, amount) in enumerate(values):
        assert merkle.verify(tree.root, address, amount, tree.proof(index))
    assert not merkle.verify(tree.root, values[0][0], values[0][1] + 1, tree.proof(0))
    assert tree.all_proofs() == [tree.proof(i) for i in range(len(values))]


def test_a_single_leaf_tree_is_its_leaf_and_empty_or_bad_input_is_refused():
    tree = merkle.build([("0x" + "11" * 20, 5)])
    assert tree.root == merkle.leaf_hash("0x" + "11" * 20, 5) and tree.proof(0) == []
    with pytest.raises(merkle.MerkleError):
        merkle.build([])
    with pytest.raises(merkle.MerkleError):
        merkle.leaf_hash("0x1234", 1)
    with pytest.raises(merkle.MerkleError):
        merkle.leaf_hash("0x" + "11" * 20, -1)


def test_load_refuses_a_tampered_dump():
    tree = merkle.build([(Account.create().address, n) for n in (1, 2, 3)])
    dump = tree.dump()
    assert merkle.load(dump).root == tree.root
    dump["values"][0]["value"][1] = "999"
    with pytest.raises(merkle.MerkleError):
        merkle.load(dump)
