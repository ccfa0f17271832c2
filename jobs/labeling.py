"""Labeling jobs: the lease sweep that returns abandoned items' slots to the pool.

Like the other periodic work, it is started by the reconciler (the worker runs it at start-up; moderators
can run it from the jobs page): the labeling area lists the sweep as always pending, and each run
schedules the next one a minute later on the worker's scheduler, under a per-minute job id.
"""

from __future__ import annotations

from jobs import app_context


def expire_leases() -> int:
    """Expire leases past their time, give their slots back, and schedule the next sweep."""
    from sapien.database import utcnow
    from sapien.labeling.leases import LEASE_SWEEP_EVERY
    from sapien.labeling.leases import expire_leases as sweep

    with app_context():
        now = utcnow()
        count = sweep(now)
        schedule_sweep(now + LEASE_SWEEP_EVERY)
        return count


def schedule_sweep(at) -> str:
    """Schedule a sweep at `at` unless that minute's sweep is already waiting or running; returns its id."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from sapien.labeling.leases import lease_sweep_job_id
    from sapien.queue import DEFAULT_RETRY, LIVE_STATUSES, get_queue

    queue = get_queue()
    job_id = lease_sweep_job_id(at)
    try:
        existing = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
    except Exception:  # noqa: BLE001 - rq raises NoSuchJobError or a decode error for stale data
        existing = None
    if existing is not None and existing.get_status(refresh=True) in LIVE_STATUSES:
        return job_id
    queue.enqueue_at(at, "jobs.labeling.expire_leases", job_id=job_id, retry=DEFAULT_RETRY, result_ttl=600, failure_ttl=86400)
    return job_id
