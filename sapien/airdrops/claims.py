"""After freezing: publishing (a distributor per airdrop, by a job through the chain outbox), what a
member sees and claims, appeals against exclusions and their public aggregate, recognized guilds.

    frozen ──request_publish──▶ publish requested ──publish job──▶ distributor deployed and funded
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from sapien.airdrops import merkle
from sapien.airdrops.models import AirdropAppeal, AirdropSnapshot, RecognizedGuild, SnapshotEntry
from sapien.database import after_commit, unit_of_work
from sapien.extensions import db
from sapien.moderation.service import record as audit
from sapien.queue import PendingWork, enqueue_once, pending_work_source

MAX_APPEAL_LENGTH = 2000


class ClaimError(ValueError):
    pass


def publish_job_id(snapshot_id: int) -> str:
    return f"airdrop-publish-{snapshot_id}"


def request_publish(snapshot_id: int, actor_id: int, claim_deadline: datetime, now: datetime) -> AirdropSnapshot:
    with unit_of_work() as session:
        snapshot = session.get(AirdropSnapshot, snapshot_id, with_for_update=True, populate_existing=True)
        if snapshot is None or not snapshot.frozen:
            raise ClaimError(str(_l("Only a frozen snapshot can be published.")))
        if snapshot.publish_requested_at is not None:
            raise ClaimError(str(_l("This airdrop is already published (or being published).")))
        if claim_deadline <= now:
            raise ClaimError(str(_l("The claim deadline must be in the future.")))
        snapshot.publish_requested_at, snapshot.claim_deadline = now, claim_deadline
        audit(actor_id, "airdrop.publish", f"airdrop_snapshot:{snapshot_id}", f"deadline {claim_deadline.isoformat()}", now)
        after_commit(lambda: enqueue_once("jobs.airdrops.publish_airdrop", snapshot_id, job_id=publish_job_id(snapshot_id), queue="chain"))
    return snapshot


@pending_work_source("airdrop-publishing")
def _pending_publishing():
    rows = db.session.scalars(
        select(AirdropSnapshot.id).where(AirdropSnapshot.publish_requested_at.is_not(None), AirdropSnapshot.funded_at.is_(None))
    )
    for snapshot_id in rows:
        yield PendingWork("jobs.airdrops.publish_airdrop", (snapshot_id,), publish_job_id(snapshot_id), queue="chain")


def publish_airdrop(snapshot_id: int, now: datetime) -> str:
    """Deploy and fund the snapshot's distributor (the publish job's body; safe to run twice: the outbox
    keys make each transaction once). Returns the distributor's address."""
    from sapien.chain.airdrop_chain import publish_distributor

    snapshot = db.session.get(AirdropSnapshot, snapshot_id, populate_existing=True)
    if snapshot is None or snapshot.publish_requested_at is None:
        raise LookupError(f"airdrop snapshot {snapshot_id} is not to be published")
    if snapshot.funded_at is not None:
        return snapshot.distributor_address
    try:
        chain_id, address = publish_distributor(
            airdrop_key=f"snapshot-{snapshot_id}", root=snapshot.merkle_root, total=int(snapshot.allocated_amount),
            deadline=snapshot.claim_deadline, now=now,
        )
    except Exception as error:
        db.session.rollback()
        with unit_of_work():  # shown on the public page while RQ retries
            db.session.get(AirdropSnapshot, snapshot_id, populate_existing=True).publish_error = f"{type(error).__name__}: {error}"[:2000]
        raise
    with unit_of_work():
        # Locked: a second run at the same moment finds it published and writes no second audit entry.
        snapshot = db.session.get(AirdropSnapshot, snapshot_id, populate_existing=True, with_for_update=True)
        if snapshot.funded_at is None:
            snapshot.chain_id, snapshot.distributor_address, snapshot.funded_at, snapshot.publish_error = chain_id, address, now, None
            audit(None, "airdrop.published", f"airdrop_snapshot:{snapshot_id}", f"distributor {address} on chain {chain_id}", now)
    return address


# --- what a member sees --------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberAllocation:
    snapshot: AirdropSnapshot
    entry: SnapshotEntry | None
    proof: list[str]
    appeal: AirdropAppeal | None


def member_allocation(snapshot_id: int, user_id: int) -> MemberAllocation | None:
    snapshot = db.session.get(AirdropSnapshot, snapshot_id)
    if snapshot is None or not snapshot.frozen:
        return None
    entry = db.session.scalar(select(SnapshotEntry).where(SnapshotEntry.snapshot_id == snapshot_id, SnapshotEntry.user_id == user_id))
    proof: list[str] = []
    if entry is not None and entry.tree_index is not None and snapshot.tree_dump:
        proof = proof_for(snapshot, entry.tree_index)
    appeal = db.session.scalar(select(AirdropAppeal).where(AirdropAppeal.snapshot_id == snapshot_id, AirdropAppeal.user_id == user_id))
    return MemberAllocation(snapshot, entry, proof, appeal)


@lru_cache(maxsize=4)
def _tree_nodes(snapshot_id: int, root: str) -> tuple[str, ...]:
    """A frozen snapshot's tree nodes, parsed once per process (frozen trees never change; the root in the
    key makes a stale entry impossible)."""
    snapshot = db.session.get(AirdropSnapshot, snapshot_id)
    return tuple(json.loads(snapshot.tree_dump)["tree"])


def proof_for(snapshot: AirdropSnapshot, tree_index: int) -> list[str]:
    """The proof from the stored tree: the sibling of each node on the way up."""
    tree = _tree_nodes(snapshot.id, snapshot.merkle_root) if snapshot.frozen else json.loads(snapshot.tree_dump)["tree"]
    proof, i = [], tree_index
    while i > 0:
        proof.append(tree[i + 1 if i & 1 else i - 1])
        i = (i - 1) >> 1
    return proof


def verify_entry(snapshot: AirdropSnapshot, entry: SnapshotEntry) -> bool:
    proof = [bytes.fromhex(node[2:]) for node in proof_for(snapshot, entry.tree_index)]
    return merkle.verify(bytes.fromhex(snapshot.merkle_root[2:]), entry.address, int(entry.amount), proof)


def frozen_snapshots() -> list[AirdropSnapshot]:
    return list(db.session.scalars(select(AirdropSnapshot).where(AirdropSnapshot.frozen_at.is_not(None)).order_by(AirdropSnapshot.id.desc())))


# --- appeals -------------------------------------------------------------------------------------

def file_appeal(snapshot_id: int, user_id: int, message: str, now: datetime) -> AirdropAppeal:
    message = (message or "").strip()
    if not message:
        raise ClaimError(str(_l("Say why the exclusion is wrong.")))
    if len(message) > MAX_APPEAL_LENGTH:
        raise ClaimError(str(_l("An appeal is at most %(count)d characters.", count=MAX_APPEAL_LENGTH)))
    entry = db.session.scalar(select(SnapshotEntry).where(SnapshotEntry.snapshot_id == snapshot_id, SnapshotEntry.user_id == user_id))
    if entry is None or entry.excluded_rule is None:
        raise ClaimError(str(_l("You were not excluded from this snapshot.")))
    try:
        with unit_of_work() as session:
            appeal = AirdropAppeal(snapshot_id=snapshot_id, user_id=user_id, rule=entry.excluded_rule, message=message, status="open", created_at=now)
            session.add(appeal)
            session.flush()
            audit(user_id, "airdrop.appeal", f"airdrop_snapshot:{snapshot_id}", entry.excluded_rule, now)
    except IntegrityError as error:
        raise ClaimError(str(_l("You have already appealed this exclusion."))) from error
    return appeal


def decide_appeal(appeal_id: int, actor_id: int, upheld: bool, now: datetime) -> AirdropAppeal:
    with unit_of_work() as session:
        appeal = session.get(AirdropAppeal, appeal_id, with_for_update=True)
        if appeal is None or appeal.status != "open":
            raise ClaimError(str(_l("This appeal is already decided.")))
        appeal.status, appeal.decided_by, appeal.decided_at = ("upheld" if upheld else "overturned"), actor_id, now
        audit(actor_id, f"airdrop.appeal.{appeal.status}", f"airdrop_appeal:{appeal_id}", appeal.rule, now)
    return appeal


def appeals_summary(snapshot_id: int | None = None) -> list[tuple[str, str, int]]:
    """(rule, status, count) for the public aggregate log; no names, no messages."""
    query = select(AirdropAppeal.rule, AirdropAppeal.status, func.count()).group_by(AirdropAppeal.rule, AirdropAppeal.status)
    if snapshot_id is not None:
        query = query.where(AirdropAppeal.snapshot_id == snapshot_id)
    return [(rule, status, count) for rule, status, count in db.session.execute(query.order_by(AirdropAppeal.rule, AirdropAppeal.status))]


def open_appeals(limit: int = 100) -> list[AirdropAppeal]:
    return list(db.session.scalars(select(AirdropAppeal).where(AirdropAppeal.status == "open").order_by(AirdropAppeal.id).limit(limit)))


# --- recognized guilds ---------------------------------------------------------------------------

def set_recognized(guild_id: int, recognized: bool, actor_id: int, now: datetime) -> None:
    with unit_of_work() as session:
        row = session.get(RecognizedGuild, guild_id)
        if recognized and row is None:
            session.add(RecognizedGuild(guild_id=guild_id, recognized_by=actor_id, recognized_at=now))
        elif not recognized and row is not None:
            session.delete(row)
        else:
            return
        audit(actor_id, "airdrop.guild.recognize" if recognized else "airdrop.guild.unrecognize", f"guild:{guild_id}", "", now)


def recognized_guild_ids() -> set[int]:
    return set(db.session.scalars(select(RecognizedGuild.guild_id)))


def guild_choices() -> list[tuple[int, str, bool]]:
    """(guild id, name, recognized) for every active guild."""
    from sapien.guilds.models import Guild

    recognized = recognized_guild_ids()
    rows = db.session.execute(select(Guild.id, Guild.name).where(Guild.disbanded_at.is_(None)).order_by(Guild.name))
    return [(guild_id, name, guild_id in recognized) for guild_id, name in rows]
