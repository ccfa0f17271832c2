"""Progression jobs: bring a member's levels and rule badges up to date (safe to run any number of times)."""

from __future__ import annotations

from jobs import app_context


def sync_member_progress(user_id: int) -> list[int]:
    """Record levels the member's ledger XP reaches and badges their counters earn; returns new levels."""
    from sapien.database import utcnow
    from sapien.progression.summary import sync_member

    with app_context():
        return sync_member(user_id, utcnow())


def sync_all_members(batch: int = 500) -> int:
    """Enqueue a sync for every member (after a catalogue change or a lost event stream)."""
    from sapien.progression.summary import enqueue_member_syncs

    with app_context():
        return enqueue_member_syncs(batch)
