"""Snapshots: create one from a checked config, run it (the RQ job's body), preview and compare.

    queued ──run──▶ running ──▶ done | failed        (then freezing.py: proposed → frozen)

Invariants (DESIGN rule 4):
- the run reads only data dated at or before the config's as-of time (criteria.py, and the chain at the
  last block mined by then), so the same config over the same data gives the same amounts and root;
- `input_hash` is keccak256 of the canonical JSON of the config and every member's inputs, and
  `result_hash` of every member's outcome and the root;
- running is safe twice: a finished snapshot is left alone, a half-done one (a worker killed mid-run)
  starts again from a clean slate; a frozen snapshot is never run or edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert, select, update

from sapien.airdrops import merkle, sybil
from sapien.airdrops.allocation import AllocationError, allocate, scores
from sapien.airdrops.config import CRITERIA, SnapshotConfig, parse_config
from sapien.airdrops.criteria import MemberInput, gather
from sapien.airdrops.models import AirdropSnapshot, SnapshotEntry
from sapien.database import after_commit, one_at_a_time, unit_of_work
from sapien.extensions import db
from sapien.moderation.service import record as audit
from sapien.queue import PendingWork, enqueue_once, pending_work_source

WRITE_CHUNK = 2000


class SnapshotError(ValueError):
    pass


def run_job_id(snapshot_id: int) -> str:
    return f"airdrop-snapshot-{snapshot_id}"


def create_snapshot(config: SnapshotConfig, actor_id: int | None, now: datetime) -> AirdropSnapshot:
    """Record a snapshot to run and queue its job once committed."""
    with unit_of_work() as session:
        snapshot = AirdropSnapshot(
            name=config.name, config=config.to_json(), as_of=config.as_of, total_amount=str(config.total_amount), status="queued",
            created_by=actor_id, created_at=now,
        )
        session.add(snapshot)
        session.flush()
        audit(actor_id, "airdrop.snapshot.create", f"airdrop_snapshot:{snapshot.id}", config.name, now)
        snapshot_id = snapshot.id
        after_commit(lambda: enqueue_run(snapshot_id))
    return snapshot


def enqueue_run(snapshot_id: int):
    return enqueue_once("jobs.airdrops.run_snapshot", snapshot_id, job_id=run_job_id(snapshot_id))


@pending_work_source("airdrop-snapshots")
def _pending_snapshots():
    for snapshot_id in db.session.scalars(select(AirdropSnapshot.id).where(AirdropSnapshot.status.in_(("queued", "running")))):
        yield PendingWork("jobs.airdrops.run_snapshot", (snapshot_id,), run_job_id(snapshot_id))


def stored_config(snapshot: AirdropSnapshot) -> SnapshotConfig:
    """The config back from its row (checked against the snapshot's own creation time)."""
    return parse_config(snapshot.config, snapshot.created_at)


# --- computing -----------------------------------------------------------------------------------

@dataclass
class Outcome:
    user_id: int
    address: str | None
    values: dict[str, int]
    score: int = 0
    amount: int = 0
    rule: str | None = None
    reason: str | None = None
    tree_index: int | None = None


@dataclass
class Result:
    outcomes: list[Outcome]
    tree: merkle.StandardTree | None
    input_hash: str
    result_hash: str

    @property
    def eligible(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.rule is None]


def _hash(data) -> str:
    return "0x" + merkle.keccak(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hex()


def compute(config: SnapshotConfig, members: dict[int, MemberInput], funders: dict[str, str | None], now: datetime) -> Result:
    """Eligibility, exclusions, scores, amounts and the tree: no database, no chain."""
    excluded = sybil.exclusions(sybil.SybilContext(members=members, funders=funders, now=now))
    outcomes = []
    for member_id in sorted(members):
        member = members[member_id]
        values = {name: int(member.values.get(name, 0)) for name in CRITERIA}
        outcome = Outcome(member_id, member.address, values)
        if member_id in excluded:
            outcome.rule, outcome.reason = excluded[member_id]
        elif not member.address:
            outcome.rule, outcome.reason = "no_wallet", sybil.encode_reason("no_wallet")
        else:
            below = [name for name, minimum in config.minimums.items() if values[name] < minimum]
            if below:
                outcome.rule, outcome.reason = "below_minimum", sybil.encode_reason("below_minimum", names=", ".join(below))
        outcomes.append(outcome)
    eligible = [outcome for outcome in outcomes if outcome.rule is None]
    member_scores = scores({outcome.user_id: outcome.values for outcome in eligible}, config.weights, config.sqrt)
    try:
        amounts = allocate(member_scores, config.total_amount, config.floor_amount, config.cap_amount)
    except AllocationError as error:
        raise SnapshotError(str(_l("The floor times the number of eligible members is more than the total."))) from error
    for outcome in eligible:
        outcome.score, outcome.amount = member_scores[outcome.user_id], amounts[outcome.user_id]
    in_tree = [outcome for outcome in eligible if outcome.amount > 0]
    tree = merkle.build([(outcome.address, outcome.amount) for outcome in in_tree]) if in_tree else None
    if tree is not None:
        for outcome, index in zip(in_tree, tree.tree_index, strict=True):
            outcome.tree_index = index
    input_hash = _hash({
        "config": config.to_json(),
        "members": [[m.user_id, m.address, m.is_banned, sorted(m.values.items()), funders.get(m.address) if m.address else None] for _, m in sorted(members.items())],
    })
    result_hash = _hash({
        "root": tree.root_hex if tree else None,
        "outcomes": [[o.user_id, o.address, str(o.amount), o.rule] for o in outcomes],
    })
    return Result(outcomes, tree, input_hash, result_hash)


# --- running (the job's body) --------------------------------------------------------------------

def _set(snapshot_id: int, **values) -> None:
    with unit_of_work():
        db.session.execute(update(AirdropSnapshot).where(AirdropSnapshot.id == snapshot_id).values(**values))


def run_snapshot(snapshot_id: int, now: datetime) -> str:
    """Run one snapshot to `done` (or `failed` with a reason); returns its status. Safe to run twice, also
    at once: the second run waits for the first and finds the snapshot done."""
    with one_at_a_time("airdrop-snapshot-run", snapshot_id):
        return _run_snapshot(snapshot_id, now)


def _run_snapshot(snapshot_id: int, now: datetime) -> str:
    snapshot = db.session.get(AirdropSnapshot, snapshot_id, populate_existing=True)
    if snapshot is None:
        raise LookupError(f"no airdrop snapshot {snapshot_id}")
    if snapshot.status in ("done", "failed") or snapshot.frozen:
        return snapshot.status
    config = stored_config(snapshot)
    with unit_of_work():
        db.session.execute(delete(SnapshotEntry).where(SnapshotEntry.snapshot_id == snapshot_id))
        db.session.execute(update(AirdropSnapshot).where(AirdropSnapshot.id == snapshot_id).values(status="running", progress_done=0, error=None))
    members = gather(config.as_of)
    addresses = sorted({member.address for member in members.values() if member.address})
    wallet_steps = len(addresses)
    total_steps = wallet_steps + len(members) + 1
    _set(snapshot_id, progress_total=total_steps, progress_done=1)
    funders: dict[str, str | None] = {}
    if addresses:
        try:
            funders = _read_chain(snapshot_id, config, members, addresses)
        except Exception as error:
            # The node is down or failing: the job raises (RQ retries, the reconciler re-enqueues a
            # running snapshot) and the status row says why it waits.
            _set(snapshot_id, error=f"waiting for the chain: {type(error).__name__}: {error}"[:2000])
            raise
    try:
        with merkle.paused_gc():
            result = compute(config, members, funders, now)
    except SnapshotError as error:
        _set(snapshot_id, status="failed", error=str(error), finished_at=now)
        return "failed"
    _write(snapshot_id, result, 1 + wallet_steps)
    eligible = [outcome for outcome in result.outcomes if outcome.rule is None]
    with unit_of_work():
        db.session.execute(
            update(AirdropSnapshot).where(AirdropSnapshot.id == snapshot_id).values(
                status="done", progress_done=total_steps, finished_at=now, input_hash=result.input_hash, result_hash=result.result_hash,
                merkle_root=result.tree.root_hex if result.tree else None,
                tree_dump=json.dumps(result.tree.dump()) if result.tree else None,
                eligible_count=len(eligible), excluded_count=len(result.outcomes) - len(eligible),
                allocated_amount=str(sum(outcome.amount for outcome in eligible)),
            )
        )
        audit(None, "airdrop.snapshot.done", f"airdrop_snapshot:{snapshot_id}", f"root {result.tree.root_hex if result.tree else '-'}", now)
    return "done"


def _read_chain(snapshot_id: int, config: SnapshotConfig, members: dict[int, MemberInput], addresses: list[str]) -> dict[str, str | None]:
    """Wallet activity into each member's values; returns each wallet's funding source."""
    from sapien.chain.airdrop_chain import wallet_activity

    def progress(done: int) -> None:
        if done % 20 == 0 or done == len(addresses):
            _set(snapshot_id, progress_done=1 + done)

    activity = wallet_activity(addresses, config.as_of, progress=progress)
    for member in members.values():
        found = activity.get(member.address) if member.address else None
        if found is not None:
            member.values["wallet_tx_count"] = found.tx_count
            if found.first_seen is not None:
                member.values["wallet_age_days"] = max(0, (config.as_of - found.first_seen).days)
    return {address: found.funder for address, found in activity.items()}


def _write(snapshot_id: int, result: Result, progress_start: int) -> None:
    rows = [
        {
            "snapshot_id": snapshot_id, "user_id": outcome.user_id, "address": outcome.address, "values": outcome.values,
            "score": outcome.score, "amount": str(outcome.amount), "excluded_rule": outcome.rule, "excluded_reason": outcome.reason,
            "tree_index": outcome.tree_index,
        }
        for outcome in result.outcomes
    ]
    for start in range(0, len(rows), WRITE_CHUNK):
        with unit_of_work():
            db.session.execute(insert(SnapshotEntry), rows[start:start + WRITE_CHUNK])
            db.session.execute(update(AirdropSnapshot).where(AirdropSnapshot.id == snapshot_id).values(progress_done=progress_start + start + len(rows[start:start + WRITE_CHUNK])))


# --- preview and compare -------------------------------------------------------------------------

@dataclass(frozen=True)
class CriterionEffect:
    name: str
    weight: int
    minimum: int
    members_with_value: int
    excluded_by_minimum: int
    share_percent: int  # of the total score this criterion accounts for


@dataclass(frozen=True)
class Preview:
    members: int
    eligible: int
    excluded: dict[str, int]
    effects: list[CriterionEffect]


def preview(config: SnapshotConfig, now: datetime) -> Preview:
    """What the config would do over today's data (without reading the chain): each criterion's reach,
    its minimum's cut, and its share of the score."""
    members = gather(config.as_of)
    result = compute(config, members, {}, now)
    eligible = result.eligible
    highest = {name: max((outcome.values[name] for outcome in eligible), default=0) for name in CRITERIA}
    contributions = {
        name: sum(config.weights.get(name, 0) * (outcome.values[name] * 1_000_000 // highest[name]) for outcome in eligible) if highest[name] else 0
        for name in CRITERIA
    }
    all_score = sum(contributions.values()) or 1
    with_wallet = [outcome for outcome in result.outcomes if outcome.rule in (None, "below_minimum")]
    effects = [
        CriterionEffect(
            name=name, weight=config.weights.get(name, 0), minimum=config.minimums.get(name, 0),
            members_with_value=sum(1 for outcome in result.outcomes if outcome.values[name] > 0),
            excluded_by_minimum=sum(1 for outcome in with_wallet if outcome.values[name] < config.minimums.get(name, 0)),
            share_percent=contributions[name] * 100 // all_score,
        )
        for name in CRITERIA
    ]
    excluded: dict[str, int] = {}
    for outcome in result.outcomes:
        if outcome.rule:
            excluded[outcome.rule] = excluded.get(outcome.rule, 0) + 1
    return Preview(members=len(result.outcomes), eligible=len(eligible), excluded=excluded, effects=effects)


@dataclass(frozen=True)
class ComparedRow:
    user_id: int
    username: str
    left: int | None
    right: int | None
    left_rule: str | None
    right_rule: str | None


def compare(left_id: int, right_id: int, limit: int = 200) -> list[ComparedRow]:
    """Members whose amount or exclusion differs between two finished snapshots."""
    from sapien.accounts.models import User

    def outcomes(snapshot_id: int) -> dict[int, tuple[int, str | None]]:
        rows = db.session.execute(select(SnapshotEntry.user_id, SnapshotEntry.amount, SnapshotEntry.excluded_rule).where(SnapshotEntry.snapshot_id == snapshot_id))
        return {user_id: (int(amount), rule) for user_id, amount, rule in rows}

    left, right = outcomes(left_id), outcomes(right_id)
    changed = sorted(member_id for member_id in left.keys() | right.keys() if left.get(member_id) != right.get(member_id))[:limit]
    names = {row.id: row.username for row in db.session.execute(select(User.id, User.username).where(User.id.in_(changed)))} if changed else {}
    return [
        ComparedRow(
            member_id, names.get(member_id, "?"), left.get(member_id, (None, None))[0], right.get(member_id, (None, None))[0],
            left.get(member_id, (None, None))[1], right.get(member_id, (None, None))[1],
        )
        for member_id in changed
    ]


def entries(snapshot_id: int, limit: int = 500) -> list[tuple[SnapshotEntry, str]]:
    from sapien.accounts.models import User

    rows = db.session.execute(
        select(SnapshotEntry, User.username).join(User, User.id == SnapshotEntry.user_id)
        .where(SnapshotEntry.snapshot_id == snapshot_id).order_by(SnapshotEntry.user_id).limit(limit)
    )
    return [(entry, username) for entry, username in rows]


def recent_snapshots(limit: int = 50) -> list[AirdropSnapshot]:
    return list(db.session.scalars(select(AirdropSnapshot).order_by(AirdropSnapshot.id.desc()).limit(limit)))
