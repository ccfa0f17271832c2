"""Labeling jobs: the lease sweep that returns abandoned items' slots to the pool, and the settlement
that pays verified answers.

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
    from sapien.labeling.leases import lease_sweep_job_id
    from sapien.queue import schedule_once

    return schedule_once("jobs.labeling.expire_leases", at, job_id=lease_sweep_job_id(at))


def settle_rewards() -> int:
    """Pay every verified, unpaid answer in batches (labeling/settlement.py); returns how many it paid.
    Safe to run twice: a paid answer is no longer verified-unpaid, and the ledger keys are unique."""
    from sapien.database import utcnow
    from sapien.labeling.settlement import settle_verified_rewards

    with app_context():
        return settle_verified_rewards(now=utcnow()).answers
