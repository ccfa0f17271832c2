"""Freezing a snapshot takes two moderators: one proposes, another approves (DESIGN rule 4).

A frozen snapshot is never edited; its config, input hash, result hash and root stay as they were.
Every step is in the moderation audit log. Both steps lock the snapshot row, so two moderators
approving at once freeze it once (the second is told it is already frozen).
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from sapien.airdrops.models import AirdropSnapshot
from sapien.database import unit_of_work
from sapien.moderation.service import record as audit


class FreezeError(ValueError):
    pass


def _locked(session, snapshot_id: int) -> AirdropSnapshot:
    snapshot = session.get(AirdropSnapshot, snapshot_id, with_for_update=True, populate_existing=True)
    if snapshot is None:
        raise FreezeError(str(_l("There is no such snapshot.")))
    return snapshot


def propose_freeze(snapshot_id: int, actor_id: int, now: datetime) -> AirdropSnapshot:
    with unit_of_work() as session:
        snapshot = _locked(session, snapshot_id)
        if snapshot.frozen:
            raise FreezeError(str(_l("This snapshot is already frozen.")))
        if snapshot.status != "done" or not snapshot.merkle_root:
            raise FreezeError(str(_l("Only a finished snapshot with a Merkle root can be frozen.")))
        if snapshot.proposed_by is not None:
            raise FreezeError(str(_l("Freezing this snapshot is already proposed; another moderator approves it.")))
        snapshot.proposed_by, snapshot.proposed_at = actor_id, now
        audit(actor_id, "airdrop.freeze.propose", f"airdrop_snapshot:{snapshot_id}", f"root {snapshot.merkle_root}", now)
    return snapshot


def approve_freeze(snapshot_id: int, actor_id: int, now: datetime) -> AirdropSnapshot:
    with unit_of_work() as session:
        snapshot = _locked(session, snapshot_id)
        if snapshot.frozen:
            raise FreezeError(str(_l("This snapshot is already frozen.")))
        if snapshot.proposed_by is None:
            raise FreezeError(str(_l("Nobody has proposed freezing this snapshot yet.")))
        if snapshot.proposed_by == actor_id:
            raise FreezeError(str(_l("You proposed this freeze: another moderator must approve it.")))
        snapshot.frozen_by, snapshot.frozen_at = actor_id, now
        audit(actor_id, "airdrop.freeze.approve", f"airdrop_snapshot:{snapshot_id}", f"input {snapshot.input_hash} result {snapshot.result_hash} root {snapshot.merkle_root}", now)
    return snapshot
