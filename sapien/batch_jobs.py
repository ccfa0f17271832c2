"""Batch jobs: a run a moment after the work arrives, so that one run takes all that came meanwhile.

For jobs whose work is a set of rows (an accepted answer to weigh, a verified reward to pay): the rows are
the record of the work, and the reconciler queues the job while any is left (`queue.pending_work_source`).
Asking for a run after every row would run the job once per row; `run_soon` *arms* one run a moment
ahead instead, and the calls before it starts cost a single Redis `SET NX`. The run disarms as it starts
(`disarm`), so the first call after that asks for the next run, which `queue.run_after_now` queues
behind the running one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq.job import get_current_job

from sapien.database import after_commit
from sapien.queue import redis_connection, run_after_now
from sapien.redis_keys import redis_key

log = logging.getLogger(__name__)

ARMED_SECONDS = 60  # an armed run that never started (lost with a flushed queue) stops blocking new ones


def _armed_key(job_id: str) -> str:
    return redis_key(f"jobs:armed:{job_id}")


def run_soon(func: str, *, job_id: str, delay_seconds: float, queue: str = "default") -> None:
    """Ask for a run of `func()` that starts after this moment, `delay_seconds` from now, so that the work
    written meanwhile is done by that same run: for batch jobs whose work is a set of rows (an answer to
    weigh, a reward to pay). Most calls find a run *armed* (waiting, not started) and cost one Redis command;
    the run disarms as it starts (`disarm`), so the first call after that arms the next one. Called from a
    job's run, the run is queued at once: that job's work is already a batch. Raises RedisError; the rows
    stay the record of the work, and the reconciler queues it."""
    connection = redis_connection()
    key = _armed_key(job_id)
    if not connection.set(key, 1, nx=True, ex=ARMED_SECONDS):
        return
    try:
        wait = delay_seconds > 0 and get_current_job() is None
        at = datetime.now(UTC) + timedelta(seconds=delay_seconds) if wait else None
        run_after_now(func, job_id=job_id, at=at, queue=queue)
    except BaseException:
        connection.delete(key)  # not armed after all: the next call tries again
        raise


def run_soon_after_commit(func: str, *, job_id: str) -> None:
    """`run_soon`, `BATCH_JOB_DELAY_SECONDS` ahead, once the current unit of work commits. With Redis down it
    only logs: the committed rows are the record of the work, and the reconciler queues it once Redis is back."""

    def request() -> None:
        try:
            run_soon(func, job_id=job_id, delay_seconds=current_app.config["BATCH_JOB_DELAY_SECONDS"])
        except RedisError as error:
            log.warning("%s not queued (Redis unavailable), the reconciler will: %s", job_id, error)

    after_commit(request)


def disarm(job_id: str) -> None:
    """A run of the job starts: work written from now on may come after its reads, so the next `run_soon`
    arms another run."""
    try:
        redis_connection().delete(_armed_key(job_id))
    except RedisError as error:  # the key expires on its own; until then the reconciler covers new work
        log.warning("%s not disarmed (Redis unavailable): %s", job_id, error)
