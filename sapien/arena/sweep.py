"""The sweep that finishes matches nobody polled to the end: both players left the page, or lost the network.

Polls and page loads finish a match past its deadline at once; this sweep (every minute, a periodic job)
catches the rest, so a seat is never held by a match that is over, and expires the guild clashes that
never began (`clash.expire_stale`). Safe to run twice: `finish` is guarded, expiring is one UPDATE.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sapien.arena import clash, matches
from sapien.database import as_utc, utcnow
from sapien.queue import PendingWork, pending_work_source

SWEEP_EVERY = timedelta(minutes=1)


def finish_due(now: datetime) -> int:
    """Finish every active match past its deadline, and expire the clashes that never began; returns how
    many matches this run finished."""
    clash.expire_stale(now)
    return sum(1 for match_id in matches.due_match_ids(now) if matches.finish_if_due(match_id, now))


def sweep_job_id(at: datetime) -> str:
    """One job id per minute: a sweep enqueued twice for the same minute runs once."""
    return f"arena-finish-due-{int(as_utc(at).timestamp()) // 60}"


@pending_work_source("arena-match-sweep", periodic=True)
def _sweep_pending():
    # Always pending: the worker's start-up reconcile begins the chain, each run schedules the next.
    yield PendingWork("jobs.arena.finish_due_matches", (), sweep_job_id(utcnow()))
