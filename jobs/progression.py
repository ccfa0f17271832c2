"""Progression jobs: bring a member's levels and rule badges up to date, and rotate the catalogue quests
(both safe to run any number of times)."""

from __future__ import annotations

from jobs import app_context


def sync_member_progress(user_id: int) -> list[int]:
    """Record levels the member's ledger XP reaches and badges their counters earn; returns new levels."""
    from sapien.database import utcnow
    from sapien.progression.summary import sync_member

    with app_context():
        return sync_member(user_id, utcnow())


def rotate_quests() -> list[int]:
    """Create the current day's and ISO week's catalogue quests that are missing; returns the new ids."""
    from sapien.database import utcnow
    from sapien.progression.quest_catalogue import rotate_quests as rotate

    with app_context():
        return rotate(utcnow())
