"""Airdrop snapshots (issue 14): allocation, Merkle tree and every proof for 1,000,000 members.

Timed in Python: scores over four criteria (square root on), pro rata with a floor and a cap, the
OpenZeppelin StandardMerkleTree of (address, amount) leaves, and every member's proof. The ceiling, in
the same run on the same values, is the OpenZeppelin JavaScript library (@openzeppelin/merkle-tree)
building the same tree and every proof; its root must equal ours.

`AIRDROP_BENCH_MEMBERS` sets the size (default 1,000,000). The JS library runs on the first
`AIRDROP_BENCH_JS_MEMBERS` leaves (default 100,000: on a 2-CPU machine it needs about two minutes for
those, and many more at 1,000,000), and the speed-up compares both on exactly those leaves.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, Figure
from sapien.i18n import TOKEN_UNIT

NAME = "Airdrop snapshot"
GOAL_SECONDS = 60.0
GOAL_SPEEDUP = 10.0

JS = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const values = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const started = process.hrtime.bigint();
const tree = StandardMerkleTree.of(values, ["address", "uint256"]);
let proofs = 0;
for (let i = 0; i < values.length; i++) proofs += tree.getProof(i).length;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ root: tree.root, seconds, proofs }));
"""


def members(count: int, seed: int = 14) -> tuple[list[str], dict[int, dict[str, int]]]:
    rng = random.Random(seed)
    addresses = ["0x" + rng.randbytes(20).hex() for _ in range(count)]
    values = {
        n: {"points": int(rng.paretovariate(1.2) * 100), "active_days": rng.randint(0, 365), "gold_accuracy": rng.randint(0, 100), "reputation": rng.randint(0, 1000)}
        for n in range(count)
    }
    return addresses, values


def python_snapshot(addresses: list[str], values: dict[int, dict[str, int]]) -> tuple[float, str, list]:
    from sapien.airdrops import merkle

    total = 10_000_000 * TOKEN_UNIT
    started = time.perf_counter()
    with merkle.paused_gc():
        return _timed(addresses, values, total, started)


def _timed(addresses: list[str], values: dict[int, dict[str, int]], total: int, started: float) -> tuple[float, str, list]:
    from sapien.airdrops import merkle
    from sapien.airdrops.allocation import allocate, scores

    member_scores = scores(values, {"points": 5, "active_days": 2, "gold_accuracy": 2, "reputation": 1}, sqrt=True)
    amounts = allocate(member_scores, total, floor=1 * TOKEN_UNIT, cap=5_000 * TOKEN_UNIT)
    leaves = [(addresses[n], amounts[n]) for n in range(len(addresses))]
    tree = merkle.build(leaves)
    proofs = tree.all_proofs()
    seconds = time.perf_counter() - started
    if sum(amounts.values()) != total or len(proofs) != len(leaves):
        raise RuntimeError("the allocation does not sum to the total")
    return seconds, tree.root_hex, leaves


def js_tree(leaves: list) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as folder:
        data, script = Path(folder) / "values.json", Path(folder) / "tree.js"
        data.write_text(json.dumps([[address, str(amount)] for address, amount in leaves]))
        script.write_text(JS)
        out = subprocess.run(
            [shutil.which("node"), "--max-old-space-size=8192", str(script), str(data)], cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "NODE_PATH": str(ROOT / "node_modules")},
        )
    found = json.loads(out.stdout)
    return found["seconds"], found["root"]


def run() -> list[Figure]:
    count = int(os.environ.get("AIRDROP_BENCH_MEMBERS", "1000000"))
    js_count = min(count, int(os.environ.get("AIRDROP_BENCH_JS_MEMBERS", "100000")))
    addresses, values = members(count)
    seconds, _root, leaves = python_snapshot(addresses, values)
    from sapien.airdrops import merkle

    subset = leaves[:js_count]
    tree_started = time.perf_counter()
    tree = merkle.build(subset)
    tree.all_proofs()
    tree_seconds = time.perf_counter() - tree_started
    js_seconds, js_root = js_tree(subset)
    if js_root != tree.root_hex:
        raise RuntimeError(f"the OpenZeppelin library's root {js_root} differs from ours {tree.root_hex}")
    speedup = js_seconds / tree_seconds
    return [
        Figure(NAME, f"{count:,} members: allocation (sqrt, floor, cap), Merkle tree and every proof", round(seconds, 2), "s",
               ceiling=f"OpenZeppelin JS library, tree and proofs of {js_count:,}: {js_seconds:.1f} s", goal=f"< {GOAL_SECONDS:.0f} s", met=seconds < GOAL_SECONDS),
        Figure(NAME, f"{js_count:,} leaves: tree and every proof, times faster than the OpenZeppelin JS library", round(speedup, 1), "×",
               ceiling=f"ours {tree_seconds:.2f} s vs JS {js_seconds:.1f} s, same root", goal=f">= {GOAL_SPEEDUP:.0f}×", met=speedup >= GOAL_SPEEDUP),
    ]
