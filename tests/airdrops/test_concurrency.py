"""Two moderators approving the same proposed freeze at once (PostgreSQL row locks): frozen once, by one of
them, with one approval in the audit log; the other is told it is already frozen."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.airdrops.conftest import NOW, add_member, base_config


@pytest.mark.postgres_only
def test_two_simultaneous_approvals_freeze_once(app):
    from jobs.airdrops import run_snapshot
    from sapien.airdrops import freezing, snapshots
    from sapien.airdrops.config import parse_config
    from sapien.airdrops.models import AirdropSnapshot
    from sapien.extensions import db
    from sapien.moderation.models import AuditLog

    with app.app_context():
        proposer, _ = add_member("proposer", role="moderator", points=10)
        approvers = [add_member(f"approver{n}", role="moderator")[0] for n in range(2)]
        snapshot_id = snapshots.create_snapshot(parse_config(base_config(), NOW), proposer, NOW).id
        run_snapshot(snapshot_id)
        freezing.propose_freeze(snapshot_id, proposer, NOW)
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(actor_id: int) -> None:
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                freezing.approve_freeze(snapshot_id, actor_id, NOW)
                outcomes.append("frozen")
            except freezing.FreezeError as error:
                outcomes.append(str(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=approve, args=(actor,)) for actor in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["This snapshot is already frozen.", "frozen"]
    with app.app_context():
        snapshot = db.session.get(AirdropSnapshot, snapshot_id)
        assert snapshot.frozen_by in approvers
        approvals = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "airdrop.freeze.approve"))
        assert approvals == 1
