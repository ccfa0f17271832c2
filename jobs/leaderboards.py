"""Leaderboard jobs."""

from __future__ import annotations

from jobs import app_context


def rebuild_boards() -> dict:
    """Rebuild every board from the ledger (safe to run twice: temp keys, then one atomic swap)."""
    from sapien.database import utcnow
    from sapien.leaderboards.rebuild import rebuild_all

    with app_context():
        report = rebuild_all(utcnow())
        return {"boards": report.boards, "entries": report.entries, "frozen": report.frozen, "notes": report.notes}
