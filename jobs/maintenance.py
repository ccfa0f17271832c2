"""Housekeeping jobs: the reconciler, run at worker start and then on a schedule."""

from __future__ import annotations

from jobs import app_context


def reconcile_pending_work() -> dict[str, int]:
    """Re-enqueue abandoned jobs and every piece of pending work, then schedule the next run."""
    from sapien.database import utcnow
    from sapien.queue import reconcile, reconcile_every, reconcile_job_id, schedule_once

    with app_context():
        counts = reconcile()
        at = utcnow() + reconcile_every()
        schedule_once("jobs.maintenance.reconcile_pending_work", at, job_id=reconcile_job_id(at))
        return counts
