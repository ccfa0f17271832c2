"""The system's invariants, checked after every fault test, load run and soak (`broken_invariants()`).

1. Every cached ledger balance equals the sum of its entries (and entries never lack a balance row).
2. No idempotency key was applied twice: ledger entries, reputation events, level-ups and notifications
   each appear once per key.
3. Every pending row is finished or re-enqueued: each piece of work the database still lists (an
   aggregation request, a member behind on levels, lost boards) has a live job in Redis.
4. No job is left "running" without a live worker (a started job whose worker stopped beating).

Run it in an app context, after the workers had their chance to drain (a job queued and not yet run is
fine; a pending row with no job at all is not).
"""

from __future__ import annotations

from redis.exceptions import RedisError
from sqlalchemy import func, select

from sapien.extensions import db


def broken_invariants() -> list[str]:
    """A line for each broken invariant; empty when they all hold."""
    return _ledger_balances() + _keys_applied_once() + _jobs()


def _ledger_balances() -> list[str]:
    from sapien.ledger.models import Balance, LedgerEntry
    from sapien.ledger.service import find_mismatched_balances

    broken = [f"balance of user {u} in {c} is {cached}, its entries sum to {summed}" for u, c, cached, summed in find_mismatched_balances()]
    orphans = db.session.execute(
        select(LedgerEntry.user_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .outerjoin(Balance, (Balance.user_id == LedgerEntry.user_id) & (Balance.currency == LedgerEntry.currency))
        .where(Balance.user_id.is_(None))
        .group_by(LedgerEntry.user_id, LedgerEntry.currency)
        .having(func.sum(LedgerEntry.amount) != 0)
    )
    broken += [f"user {u} has {c} entries summing to {total} and no balance row" for u, c, total in orphans]
    return broken


def _keys_applied_once() -> list[str]:
    from sapien.ledger.models import LedgerEntry
    from sapien.notifications.models import Notification
    from sapien.progression.models import LevelUp
    from sapien.quality.models import ReputationEvent

    broken = []
    for label, columns in (
        ("ledger idempotency key", (LedgerEntry.idempotency_key,)),
        ("reputation event key", (ReputationEvent.key,)),
        ("notification key", (Notification.dedupe_key,)),
        ("level-up", (LevelUp.user_id, LevelUp.level)),
    ):
        rows = db.session.execute(
            select(*columns, func.count()).where(columns[0].is_not(None)).group_by(*columns).having(func.count() > 1).limit(20)
        )
        broken += [f"{label} {tuple(row[:-1]) if len(row) > 2 else row[0]} applied {row[-1]} times" for row in rows]
    return broken


def _jobs() -> list[str]:
    from sapien.queue import abandoned_jobs, is_live, pending_rows

    try:
        broken = [f"job {job.id} is left running by dead worker {job.worker_name}" for job in abandoned_jobs()]
        broken += [f"pending {source} work has no live job {work.job_id}" for source, work in pending_rows() if not is_live(work.job_id)]
    except RedisError as error:
        return [f"Redis cannot be read to check the jobs: {type(error).__name__}"]
    return broken
