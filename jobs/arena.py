"""Arena jobs: the sweep that finishes matches past their deadline."""

from __future__ import annotations

from jobs import app_context


def finish_due_matches() -> int:
    """Finish the matches past their deadline that no poll finished, then schedule the next sweep."""
    from sapien.arena.sweep import SWEEP_EVERY, finish_due, sweep_job_id
    from sapien.database import utcnow
    from sapien.queue import schedule_once

    with app_context():
        now = utcnow()
        count = finish_due(now)
        at = now + SWEEP_EVERY
        schedule_once("jobs.arena.finish_due_matches", at, job_id=sweep_job_id(at))
        return count
