"""Running snapshots: values as of the as-of time, exclusions with reasons, the job safe twice, the same
config giving the same root, comparing, freezing by two moderators, appeals, and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from jobs.airdrops import run_snapshot as run_job
from sapien.airdrops import claims, freezing, merkle, snapshots
from sapien.airdrops.config import parse_config
from sapien.airdrops.models import AirdropSnapshot, SnapshotEntry
from sapien.airdrops.sybil import reason_text
from sapien.extensions import db
from sapien.i18n import TOKEN_UNIT
from sapien.moderation.models import AuditLog
from tests.airdrops.conftest import AS_OF, NOW, add_member, base_config


def run(data: dict, actor_id: int | None = None) -> AirdropSnapshot:
    snapshot = snapshots.create_snapshot(parse_config(data, NOW), actor_id, NOW)
    assert run_job(snapshot.id) == "done"
    return db.session.get(AirdropSnapshot, snapshot.id, populate_existing=True)


def entry(snapshot_id: int, user_id: int) -> SnapshotEntry:
    return db.session.scalar(select(SnapshotEntry).where(SnapshotEntry.snapshot_id == snapshot_id, SnapshotEntry.user_id == user_id))


def test_a_snapshot_allocates_pro_rata_to_points_as_of_its_time_and_excludes_with_reasons(app_ctx):
    from sapien.accounts.models import User
    from sapien.database import unit_of_work
    from sapien.ledger.service import credit

    whale, whale_wallet = add_member("whale", points=900)
    small, _ = add_member("small", points=100)
    nowallet, _ = add_member("nowallet", points=500, wallet=None)
    banned, _ = add_member("banned", points=500)
    with unit_of_work():
        db.session.get(User, banned).is_banned = True
    credit(small, "points", 10_000, kind="test", key="after-as-of", now=AS_OF + timedelta(hours=1))  # after the as-of: ignored

    snapshot = run(base_config(weights={"points": 1}))
    assert snapshot.status == "done" and snapshot.progress_percent == 100
    assert entry(snapshot.id, whale).values["points"] == 900 and entry(snapshot.id, small).values["points"] == 100
    assert int(entry(snapshot.id, whale).amount) == 900 * TOKEN_UNIT and int(entry(snapshot.id, small).amount) == 100 * TOKEN_UNIT
    assert entry(snapshot.id, nowallet).excluded_rule == "no_wallet" and entry(snapshot.id, nowallet).amount == "0"
    assert entry(snapshot.id, banned).excluded_rule == "banned_account"
    assert reason_text(entry(snapshot.id, banned).excluded_reason) == "The account is banned."
    assert snapshot.eligible_count == 2 and snapshot.excluded_count == 2
    # The stored tree is the OpenZeppelin dump, and the stored proof verifies the whale's leaf.
    tree = merkle.load(json.loads(snapshot.tree_dump))
    assert tree.root_hex == snapshot.merkle_root
    whale_entry = entry(snapshot.id, whale)
    assert claims.verify_entry(snapshot, whale_entry) and whale_entry.address == whale_wallet


def test_minimums_and_caps_and_a_shared_wallet_are_applied(app_ctx):
    from sapien.chain.wallet_models import Wallet
    from sapien.database import unit_of_work

    first, _ = add_member("first", points=1000)
    second, _ = add_member("second", points=300)
    low, _ = add_member("low", points=5)
    twin, twin_wallet = add_member("twin", points=300)
    copycat, _ = add_member("copycat", points=300, wallet=None)
    with unit_of_work() as session:  # the same wallet, another spelling: the rule merges them
        session.add(Wallet(user_id=copycat, address=twin_wallet.lower(), linked_at=AS_OF - timedelta(days=3)))
    snapshot = run(base_config(weights={"points": 1}, minimums={"points": 10}, cap_tokens="400"))
    assert entry(snapshot.id, low).excluded_rule == "below_minimum"
    assert entry(snapshot.id, copycat).excluded_rule == "shared_wallet"
    assert reason_text(entry(snapshot.id, copycat).excluded_reason) == "Its wallet is also linked to member twin."
    assert reason_text(entry(snapshot.id, low).excluded_reason) == "Below the minimum for: points."
    from flask_babel import force_locale

    with force_locale("fr"):  # stored as a key and parameters: shown in the reader's language
        assert reason_text(entry(snapshot.id, copycat).excluded_reason) == "Son portefeuille est aussi lié au membre twin."
    assert int(entry(snapshot.id, first).amount) == 400 * TOKEN_UNIT
    assert int(entry(snapshot.id, second).amount) + int(entry(snapshot.id, twin).amount) == 600 * TOKEN_UNIT


def test_members_trust_and_safety_flagged_or_clustered_are_excluded_with_reasons(app_ctx):
    from sapien.database import unit_of_work
    from sapien.moderation.models import Flag
    from sapien.moderation.signals import record_signal

    honest, _ = add_member("honest", points=500)
    cheat, _ = add_member("cheat", points=500)
    main_account, _ = add_member("main", points=400)
    sock, _ = add_member("sock", points=300)
    with unit_of_work() as session:
        session.add(Flag(user_id=cheat, kind="collusion", score=0.97, evidence={}, status="open", created_at=NOW, updated_at=NOW))
    for user_id, address in ((main_account, "203.0.113.7"), (sock, "203.0.113.9")):  # one /24 network, one device
        record_signal(user_id, "login", address, "Firefox", "device-shared-by-two", NOW)
    snapshot = run(base_config(weights={"points": 1}))
    assert entry(snapshot.id, cheat).excluded_rule == "flagged_by_trust_and_safety"
    assert reason_text(entry(snapshot.id, cheat).excluded_reason) == "Flagged by trust & safety."
    # The cluster keeps one account (the first) and excludes the other, saying what they share.
    assert entry(snapshot.id, main_account).excluded_rule is None and int(entry(snapshot.id, main_account).amount) > 0
    assert entry(snapshot.id, sock).excluded_rule == "shared_signal_cluster"
    assert "main" in reason_text(entry(snapshot.id, sock).excluded_reason)
    assert entry(snapshot.id, honest).excluded_rule is None


def test_the_job_run_twice_changes_nothing_and_the_same_config_gives_the_same_root(app_ctx):
    add_member("ana", points=40)
    add_member("bob", points=60)
    snapshot = run(base_config())
    hashes = (snapshot.merkle_root, snapshot.input_hash, snapshot.result_hash)
    assert run_job(snapshot.id) == "done"
    assert db.session.scalar(select(db.func.count()).select_from(SnapshotEntry).where(SnapshotEntry.snapshot_id == snapshot.id)) == 2
    again = run(base_config(name="Season 1 again"))
    assert (again.merkle_root, again.result_hash) == (hashes[0], hashes[2])
    # Another config (different weights) gives another input hash.
    other = run(base_config(weights={"points": 1}))
    assert other.input_hash != hashes[1]


def test_a_half_done_run_starts_again_from_a_clean_slate(app_ctx):
    add_member("ana", points=40)
    snapshot = snapshots.create_snapshot(parse_config(base_config(), NOW), None, NOW)
    snapshots._set(snapshot.id, status="running", progress_done=3)  # a worker died mid-run
    assert [work.job_id for work in snapshots._pending_snapshots()] == [snapshots.run_job_id(snapshot.id)]
    assert run_job(snapshot.id) == "done"
    assert list(snapshots._pending_snapshots()) == []


def test_comparing_two_snapshots_lists_the_members_whose_outcome_differs(app_ctx):
    ana, _ = add_member("ana", points=40)
    bob, _ = add_member("bob", points=60)
    left = run(base_config(weights={"points": 1}))
    right = run(base_config(weights={"points": 1}, minimums={"points": 50}))
    rows = snapshots.compare(left.id, right.id)
    assert [(row.username, row.right_rule) for row in rows] == [("ana", "below_minimum"), ("bob", None)]
    assert rows[1].right == 1000 * TOKEN_UNIT and rows[1].left == 600 * TOKEN_UNIT
    assert snapshots.compare(left.id, left.id) == []


def test_a_snapshot_nobody_is_eligible_for_fails_with_a_reason(app_ctx):
    add_member("ana", points=5, wallet=None)
    snapshot = snapshots.create_snapshot(parse_config(base_config(floor_tokens="10"), NOW), None, NOW)
    run_job(snapshot.id)
    snapshot = db.session.get(AirdropSnapshot, snapshot.id, populate_existing=True)
    assert snapshot.status == "done" and snapshot.merkle_root is None and snapshot.eligible_count == 0
    with pytest.raises(freezing.FreezeError, match="Only a finished snapshot with a Merkle root"):
        freezing.propose_freeze(snapshot.id, 1, NOW)


def test_freezing_needs_two_moderators_and_happens_once_all_in_the_audit_log(app_ctx):
    first, _ = add_member("mod1", role="moderator", points=10)
    second, _ = add_member("mod2", role="moderator", points=20)
    snapshot = run(base_config(), actor_id=first)
    with pytest.raises(freezing.FreezeError, match="Nobody has proposed"):
        freezing.approve_freeze(snapshot.id, second, NOW)
    freezing.propose_freeze(snapshot.id, first, NOW)
    with pytest.raises(freezing.FreezeError, match="already proposed"):
        freezing.propose_freeze(snapshot.id, second, NOW)
    with pytest.raises(freezing.FreezeError, match="You proposed this freeze"):
        freezing.approve_freeze(snapshot.id, first, NOW)
    freezing.approve_freeze(snapshot.id, second, NOW)
    with pytest.raises(freezing.FreezeError, match="already frozen"):
        freezing.approve_freeze(snapshot.id, second, NOW)
    frozen = db.session.get(AirdropSnapshot, snapshot.id, populate_existing=True)
    assert frozen.frozen and frozen.frozen_by == second and frozen.proposed_by == first
    assert run_job(snapshot.id) == "done"  # a frozen snapshot is never run again
    actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.target == f"airdrop_snapshot:{snapshot.id}").order_by(AuditLog.id)))
    assert actions == ["airdrop.snapshot.create", "airdrop.snapshot.done", "airdrop.freeze.propose", "airdrop.freeze.approve"]


def test_an_excluded_member_appeals_once_and_the_log_is_public_in_aggregate(app_ctx):
    mod1, _ = add_member("mod1", role="moderator", points=10)
    mod2, _ = add_member("mod2", role="moderator", points=10)
    nowallet, _ = add_member("nowallet", points=10, wallet=None)
    snapshot = run(base_config())
    freezing.propose_freeze(snapshot.id, mod1, NOW)
    freezing.approve_freeze(snapshot.id, mod2, NOW)
    with pytest.raises(claims.ClaimError, match="not excluded"):
        claims.file_appeal(snapshot.id, mod1, "I want more", NOW)
    with pytest.raises(claims.ClaimError, match="Say why"):
        claims.file_appeal(snapshot.id, nowallet, "  ", NOW)
    appeal = claims.file_appeal(snapshot.id, nowallet, "I linked it the day after", NOW)
    with pytest.raises(claims.ClaimError, match="already appealed"):
        claims.file_appeal(snapshot.id, nowallet, "again", NOW)
    assert claims.appeals_summary(snapshot.id) == [("no_wallet", "open", 1)]
    claims.decide_appeal(appeal.id, mod1, upheld=True, now=NOW)
    assert claims.appeals_summary() == [("no_wallet", "upheld", 1)]
    mine = claims.member_allocation(snapshot.id, nowallet)
    assert mine.entry.excluded_rule == "no_wallet" and mine.appeal.status == "upheld"


def test_the_cli_runs_a_config_file_and_exports_tree_and_csv(app, app_ctx, tmp_path):
    add_member("ana", points=40)
    add_member("bob", points=60)
    path = tmp_path / "airdrop.json"
    path.write_text(json.dumps(base_config()))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["airdrops", "run", str(path)])
    assert result.exit_code == 0, result.output
    snapshot_id = int(result.output.strip().splitlines()[-1])
    result = runner.invoke(args=["airdrops", "export", str(snapshot_id), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    dump = json.loads((tmp_path / "out" / "tree.json").read_text())
    snapshot = db.session.get(AirdropSnapshot, snapshot_id, populate_existing=True)
    assert dump["format"] == "standard-v1" and dump["tree"][0] == snapshot.merkle_root
    lines = (tmp_path / "out" / "allocations.csv").read_text().splitlines()
    assert lines[0] == "address,amount" and len(lines) == 3
    assert sum(int(line.split(",")[1]) for line in lines[1:]) == 1000 * TOKEN_UNIT
    path.write_text(json.dumps(base_config(weights={"points": -1})))
    bad = runner.invoke(args=["airdrops", "run", str(path)])
    assert bad.exit_code != 0 and "The weight of Points cannot be negative." in bad.output


def test_the_documented_example_is_valid_and_as_of_now_is_recorded_as_the_runs_time(app_ctx):
    from pathlib import Path

    example = json.loads((Path(__file__).resolve().parents[2] / "docs" / "examples" / "airdrop.json").read_text())
    config = parse_config(example, NOW)
    assert config.as_of == NOW and config.to_json()["as_of"] == NOW.isoformat()
    # (tests/test_migrations_and_demo.py runs it over the seeded demo community.)


def test_a_run_while_the_chain_is_down_waits_with_a_reason_and_finishes_on_retry(app, app_ctx):
    from tests.conftest import free_port

    add_member("ana", points=40)
    snapshot = snapshots.create_snapshot(parse_config(base_config(), NOW), None, NOW)
    url = app.config["CHAIN_RPC_URL"]
    app.config["CHAIN_RPC_URL"] = f"http://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(Exception):  # noqa: B017 - whatever the node's client raises; RQ retries it
            run_job(snapshot.id)
    finally:
        app.config["CHAIN_RPC_URL"] = url
    waiting = db.session.get(AirdropSnapshot, snapshot.id, populate_existing=True)
    assert waiting.status == "running" and waiting.error.startswith("waiting for the chain")
    assert [work.job_id for work in snapshots._pending_snapshots()] == [snapshots.run_job_id(snapshot.id)]
    assert run_job(snapshot.id) == "done"
    done = db.session.get(AirdropSnapshot, snapshot.id, populate_existing=True)
    assert done.error is None and done.merkle_root


def test_a_floor_the_total_cannot_pay_fails_the_run_with_a_clear_reason(app_ctx):
    add_member("ana", points=40)
    add_member("bob", points=60)
    snapshot = snapshots.create_snapshot(parse_config(base_config(floor_tokens="600"), NOW), None, NOW)
    assert run_job(snapshot.id) == "failed"
    assert run_job(snapshot.id) == "failed"  # safe twice
    failed = db.session.get(AirdropSnapshot, snapshot.id, populate_existing=True)
    assert failed.error == "The floor times the number of eligible members is more than the total." and failed.merkle_root is None
