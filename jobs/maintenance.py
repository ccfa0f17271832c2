"""Housekeeping jobs: the reconciler, run when a worker starts and then on a schedule."""

from __future__ import annotations

from jobs import app_context


def reconcile_pending_work() -> dict[str, int]:
    """Schedule the next run first (so a run killed midway does not end the chain), then re-enqueue
    abandoned jobs and every piece of pending work."""
    from sapien.database import utcnow
    from sapien.queue import reconcile, reconcile_every, reconcile_job_id, schedule_once

    with app_context():
        at = utcnow() + reconcile_every()
        schedule_once("jobs.maintenance.reconcile_pending_work", at, job_id=reconcile_job_id(at))
        return reconcile()
