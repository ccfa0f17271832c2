"""Airdrop jobs: run one snapshot (default queue), publish one frozen airdrop (chain queue); both safe twice."""

from __future__ import annotations

from jobs import app_context


def run_snapshot(snapshot_id: int) -> str:
    """Compute one snapshot from wherever it stopped; returns its status."""
    from sapien.airdrops.snapshots import run_snapshot as run
    from sapien.database import utcnow

    with app_context():
        return run(snapshot_id, utcnow())


def publish_airdrop(snapshot_id: int) -> str:
    """Deploy and fund one frozen snapshot's distributor; returns its address."""
    from sapien.airdrops.claims import publish_airdrop as publish
    from sapien.database import utcnow

    with app_context():
        return publish(snapshot_id, utcnow())
