"""RQ plumbing: Redis connection, queues, `enqueue_once`, the worker, its heartbeat, and the reconciler.

The database is the source of truth (DESIGN rule 2): a queue can be flushed, and `reconcile`
re-enqueues every piece of pending work that some area still has in its tables.

Worker liveness comes from a heartbeat of our own, not from RQ's worker registry (whose keys live for
minutes and vanish for good with a Redis flush): each worker adds its name with the time to one sorted
set every second from a thread, so a killed worker drops out within `HEARTBEAT_TTL` seconds and a
flushed or restarted Redis gets the entry back a second later. A started job whose worker has no
heartbeat is abandoned: `enqueue_once` does not count it as live, and `reconcile` puts it back on its
queue.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import delete, select

from sapien.job_attempts import JobAttempt

log = logging.getLogger(__name__)

QUEUE_NAMES = ("default", "chain")
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
DEFAULT_RETRY = Retry(max=3, interval=[10, 30, 120])
# A job in these states is about to do the work; enqueueing the same id again does nothing.
# Finished or failed jobs may be enqueued again: every job is safe to run twice.
LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}

# Seconds each kind of job may run before RQ stops it (RQ's own default is 180 s for every job).
JOB_TIMEOUTS = {
    "jobs.airdrops.publish_airdrop": 300,
    "jobs.airdrops.run_snapshot": 1800,
    "jobs.api.close_campaign_at_deadline": 120,
    "jobs.api.deliver_webhook": 60,
    "jobs.api.deliver_webhooks": 600,
    "jobs.api.expire_idempotency_keys": 300,
    "jobs.arena.finish_due_matches": 60,
    "jobs.chain.mint_badge": 180,
    "jobs.chain.mint_ready_badges": 600,
    "jobs.chain.send_transaction": 180,
    "jobs.economy.convert_epoch": 1200,
    "jobs.governance.close_proposal": 120,
    "jobs.governance.execute_proposal": 60,
    "jobs.chain.settle_withdrawals": 600,
    "jobs.labeling.expire_leases": 60,
    "jobs.labeling.settle_rewards": 600,
    "jobs.leaderboards.rebuild_boards": 600,
    "jobs.maintenance.reconcile_pending_work": 300,
    "jobs.moderation.enforce_retention": 300,
    "jobs.moderation.scan": 900,
    "jobs.progression.rotate_quests": 60,
    "jobs.progression.sync_member_progress": 60,
    "jobs.quality.aggregate_pack": 1200,
    "jobs.quality.decay_reputation": 600,
    "jobs.quality.decide_items": 600,
    "jobs.quality.escalate_reviews": 60,
}
DEFAULT_JOB_TIMEOUT = 180  # for functions outside jobs/ (the tests' sample jobs)

HEARTBEAT_EVERY = 1.0  # seconds between two beats of a worker
HEARTBEAT_TTL = 5.0  # a worker silent for this long is dead
HEARTBEAT_KEY = "sapien:workers:alive"  # sorted set: worker name → time of its last beat


def redis_connection() -> Redis:
    extension_state = current_app.extensions.setdefault("sapien_redis", {})
    url = current_app.config["REDIS_URL"]
    if url not in extension_state:
        extension_state[url] = Redis.from_url(url)
    return extension_state[url]


def get_queue(name: str = "default") -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_connection(), serializer=JSONSerializer)


def job_timeout_for(func: Callable | str) -> int:
    name = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    if name.startswith("jobs.") and name not in JOB_TIMEOUTS:
        raise ValueError(f"give {name} a timeout in JOB_TIMEOUTS")
    return JOB_TIMEOUTS.get(name, DEFAULT_JOB_TIMEOUT)


def enqueue_once(func: Callable | str, *args, job_id: str, queue: str = "default", retry: Retry | None = DEFAULT_RETRY, at_front: bool = False) -> Job:
    """Enqueue `func(*args)` under a deterministic id; if that job is already live, return it instead.

    Arguments must be JSON values (ids, strings): jobs load everything else from the database.
    """
    if not JOB_ID_PATTERN.match(job_id):
        raise ValueError(f"job ids use only [A-Za-z0-9_-]: {job_id!r}")
    connection = redis_connection()
    # A short lock so two requests enqueueing the same id at once create one job.
    lock = connection.lock(f"sapien:enqueue-lock:{job_id}", timeout=10, blocking_timeout=5)
    with lock:
        existing = _fetch(job_id, connection)
        if existing is not None and _is_live(existing):
            return existing
        if existing is not None:
            _forget(existing)
        return get_queue(queue).enqueue(
            func, *args, job_id=job_id, retry=retry, at_front=at_front, job_timeout=job_timeout_for(func),
            result_ttl=86400, failure_ttl=7 * 86400,
        )


def run_after_now(func: str, *, job_id: str, at: datetime | None = None, queue: str = "default") -> str | None:
    """Make sure a run of `func()` starts after this moment (at `at` at the earliest, when given): for work
    whose job reads what is there when it starts, a run already under way may have read before the work was
    written. A waiting run is reused; if the job is running, a follow-up is queued under ``<job_id>-next``
    (the two ids take turns). Returns the id, or None when both are running at once (two workers): the
    reconciler's next pass covers that."""
    turns = (job_id, f"{job_id}-next")
    jobs = {candidate: _fetch(candidate, redis_connection()) for candidate in turns}
    live = {candidate: job for candidate, job in jobs.items() if job is not None and _is_live(job)}
    for candidate, job in live.items():
        if job.get_status() != JobStatus.STARTED:
            return candidate
    for candidate in turns:
        if candidate not in live:
            return schedule_once(func, at, job_id=candidate, queue=queue) if at is not None else enqueue_once(func, job_id=candidate, queue=queue).id
    return None


def schedule_once(func: str, at: datetime, *, job_id: str, queue: str = "default") -> str:
    """Schedule `func()` at `at` on the worker's scheduler unless that id is already waiting or running."""
    if not JOB_ID_PATTERN.match(job_id):
        raise ValueError(f"job ids use only [A-Za-z0-9_-]: {job_id!r}")
    target = get_queue(queue)
    existing = _fetch(job_id, target.connection)
    if existing is not None and _is_live(existing):
        return job_id
    if existing is not None:
        _forget(existing)
    target.enqueue_at(at, func, job_id=job_id, retry=DEFAULT_RETRY, job_timeout=job_timeout_for(func), result_ttl=600, failure_ttl=86400)
    return job_id


def _fetch(job_id: str, connection: Redis) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except Exception:  # noqa: BLE001 - rq raises NoSuchJobError or a decode error for stale data
        return None


def _forget(job: Job) -> None:
    """Delete a job that is not live, and any started-registry entry a dead worker left for it (else RQ's
    own clean-up would later take the entry for the new run and fail that run as abandoned)."""
    for name in QUEUE_NAMES:
        registry = StartedJobRegistry(name, connection=job.connection, serializer=JSONSerializer)
        stale = [entry for entry in job.connection.zrange(registry.key, 0, -1) if entry.decode().split(":", 1)[0] == job.id]
        if stale:
            job.connection.zrem(registry.key, *stale)
    job.delete()


def _is_live(job: Job) -> bool:
    """Is the job really waiting or running? A lost queue list can leave a "queued" job hash behind, and a
    killed worker leaves its job "started" for good."""
    status = job.get_status(refresh=True)
    if status not in LIVE_STATUSES:
        return False
    queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
    if status == JobStatus.QUEUED:
        return job.connection.lpos(queue.key, job.id) is not None
    if status == JobStatus.STARTED:
        return job.id in StartedJobRegistry(queue=queue) and not _abandoned(job, live_workers(job.connection))
    if status == JobStatus.SCHEDULED:
        return job.id in ScheduledJobRegistry(queue=queue)
    return True


def _abandoned(job: Job, alive: set[str]) -> bool:
    """Started by a worker that no longer beats (a worker beats before it takes its first job; the short
    grace covers a job being marked started while the beats are read)."""
    if job.worker_name in alive:
        return False
    started = job.started_at or job.enqueued_at
    return started is None or (time.time() - started.timestamp()) > 2 * HEARTBEAT_EVERY


# --- worker liveness ----------------------------------------------------------------------------

def live_workers(connection: Redis | None = None) -> set[str]:
    """Names of the workers that beat within the last `HEARTBEAT_TTL` seconds."""
    connection = connection or redis_connection()
    names = connection.zrangebyscore(HEARTBEAT_KEY, time.time() - HEARTBEAT_TTL, "+inf")
    return {name.decode() for name in names}


def worker_count() -> int:
    return len(live_workers())


class Heartbeat(threading.Thread):
    """Beats for one worker every `HEARTBEAT_EVERY` seconds on a connection of its own.

    When its entry was missing (Redis flushed or restarted) it calls `on_reset` once the beat is back:
    the worker re-registers with RQ and queues a reconcile, since the queues were lost too.
    """

    def __init__(self, url: str, name: str, on_reset: Callable[[], None] | None = None):
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.connection = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.worker_name = name
        self.on_reset = on_reset
        self.stopped = threading.Event()
        self.beats = 0

    def beat(self) -> None:
        now = time.time()
        with self.connection.pipeline() as pipe:
            pipe.zadd(HEARTBEAT_KEY, {self.worker_name: now})
            pipe.zremrangebyscore(HEARTBEAT_KEY, 0, now - 10 * HEARTBEAT_TTL)
            added, _ = pipe.execute()
        self.beats += 1
        if added and self.beats > 1 and self.on_reset is not None:
            # In a thread of its own: the reset's work (re-registering, queueing a reconcile) may wait on
            # Redis or the database, and the beat must go on meanwhile or the worker would look dead.
            threading.Thread(target=self._reset, name=f"reset-{self.worker_name}", daemon=True).start()

    def _reset(self) -> None:
        try:
            self.on_reset()
        except Exception:  # noqa: BLE001 - a failed reset is logged; the next flush tries again
            log.exception("heartbeat of %s: reset failed", self.worker_name)

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.beat()
            except RedisError as error:
                log.warning("heartbeat of %s failed: %s", self.worker_name, error)
                self.beats += 1  # the next successful beat re-adds the entry and counts as a reset
            self.stopped.wait(HEARTBEAT_EVERY)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=5)
        with contextlib.suppress(RedisError):
            self.connection.zrem(HEARTBEAT_KEY, self.worker_name)


@dataclass
class JobRow:
    id: str
    queue: str
    state: str
    func_name: str
    args: list = field(default_factory=list)
    enqueued_at: object = None
    ended_at: object = None
    error: str = ""


def _job_rows(queue: Queue, state: str, ids: Iterable[str]) -> list[JobRow]:
    rows = []
    for job in Job.fetch_many(list(ids), connection=queue.connection, serializer=JSONSerializer):
        if job is None:
            continue
        error = ""
        if state == "failed":
            result = job.latest_result()
            error = (result.exc_string or "").strip().splitlines()[-1] if result and result.exc_string else ""
        rows.append(
            JobRow(
                id=job.id,
                queue=queue.name,
                state=state,
                func_name=job.func_name,
                args=list(job.args or []),
                enqueued_at=job.enqueued_at,
                ended_at=job.ended_at,
                error=error[:300],
            )
        )
    return rows


def list_jobs(limit: int = 100) -> dict[str, list[JobRow]]:
    """Queued, running, scheduled and failed jobs across our queues, for the moderator page."""
    found: dict[str, list[JobRow]] = {"queued": [], "started": [], "scheduled": [], "failed": []}
    for name in QUEUE_NAMES:
        queue = get_queue(name)
        found["queued"] += _job_rows(queue, "queued", queue.get_job_ids(0, limit - 1))
        found["started"] += _job_rows(queue, "started", StartedJobRegistry(queue=queue).get_job_ids(0, limit - 1))
        found["scheduled"] += _job_rows(queue, "scheduled", ScheduledJobRegistry(queue=queue).get_job_ids(0, limit - 1))
        found["failed"] += _job_rows(queue, "failed", FailedJobRegistry(queue=queue).get_job_ids(0, limit - 1))
    for record in given_up_jobs()[:limit]:
        error = _l("Given up: dead workers abandoned it %(runs)s times. Its pending work waits for a retry.", runs=record.abandoned_runs)
        found["failed"].append(
            JobRow(id=record.job_id, queue=record.queue, state="failed", func_name=record.func, args=list(record.args or []),
                   enqueued_at=record.given_up_at, ended_at=record.given_up_at, error=error)
        )
    return found


def retry_failed_job(job_id: str) -> bool:
    """Put a failed (or given-up) job back on its queue. False if no failed job has that id."""
    from sapien.extensions import db

    record = db.session.get(JobAttempt, job_id)
    if record is not None and record.given_up_at is not None:
        func, args, queue = record.func, list(record.args or []), record.queue
        forget_attempts(job_id)
        enqueue_once(func, *args, job_id=job_id, queue=queue)
        return True
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(queue=get_queue(name))
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return True
    return False


def abandoned_jobs() -> list[Job]:
    """Jobs in a started registry whose worker no longer beats."""
    connection = redis_connection()
    alive = live_workers(connection)
    found = []
    for name in QUEUE_NAMES:
        registry = StartedJobRegistry(queue=get_queue(name))
        ids = sorted({job_id for job_id, _ in registry.get_job_and_execution_ids(cleanup=False)})
        for job in Job.fetch_many(ids, connection=connection, serializer=JSONSerializer):
            if job is not None and job.get_status(refresh=False) == JobStatus.STARTED and _abandoned(job, alive):
                found.append(job)
    return found


def max_abandoned_runs() -> int:
    """Runs a job may lose to dead workers before it is given up (config JOB_MAX_ABANDONED_RUNS, 3)."""
    return int(current_app.config.get("JOB_MAX_ABANDONED_RUNS", 3))


def _count_abandoned_run(job: Job) -> JobAttempt:
    """Count this dead run of `job` in the database (once, however many reconcilers see it); gives the
    job up when it has lost `max_abandoned_runs` runs."""
    from sapien.database import as_utc, unit_of_work, utcnow

    now = utcnow()
    started = job.started_at.replace(tzinfo=UTC) if job.started_at and job.started_at.tzinfo is None else job.started_at
    with unit_of_work() as session:
        record = session.get(JobAttempt, job.id, with_for_update=True)
        if record is None:
            record = JobAttempt(job_id=job.id, func=job.func_name, args=list(job.args or []), queue=job.origin, abandoned_runs=0, updated_at=now)
            session.add(record)
        if record.given_up_at is None and (started is None or record.last_started_at is None or as_utc(record.last_started_at) != started):
            record.abandoned_runs += 1
            record.last_started_at = started
            record.func, record.args, record.queue, record.updated_at = job.func_name, list(job.args or []), job.origin, now
            if record.abandoned_runs >= max_abandoned_runs():
                record.given_up_at = now
        session.flush()
        session.expunge(record)
    return record


def requeue_abandoned() -> list[str]:
    """Put every job of a dead worker back on its queue (every job is safe to run twice); returns their ids.

    A job whose runs keep dying (it kills its worker every time) is given up after `max_abandoned_runs`:
    it is not re-enqueued, the reconciler leaves its pending row alone, and the moderators' jobs page
    lists it with the failed jobs until someone retries it.
    """
    requeued = []
    for job in abandoned_jobs():
        record = _count_abandoned_run(job)
        if record.given_up_at is not None:
            log.error("job %s was abandoned by dead workers %s times: given up (retry it from the jobs page)", job.id, record.abandoned_runs)
            _forget(job)
            continue
        func, args, queue = job.func_name, list(job.args or []), job.origin
        log.warning("job %s was abandoned by dead worker %s (run %s): re-enqueued", job.id, job.worker_name, record.abandoned_runs)
        enqueue_once(func, *args, job_id=job.id, queue=queue)
        requeued.append(job.id)
    return requeued


def given_up_job_ids() -> set[str]:
    from sapien.extensions import db

    return set(db.session.scalars(select(JobAttempt.job_id).where(JobAttempt.given_up_at.is_not(None))))


def given_up_jobs() -> list[JobAttempt]:
    from sapien.extensions import db

    return list(db.session.scalars(select(JobAttempt).where(JobAttempt.given_up_at.is_not(None)).order_by(JobAttempt.given_up_at.desc())))


def forget_attempts(job_id: str) -> bool:
    """Clear a job's count of abandoned runs (it finished, or a moderator retries it). True if it had one."""
    from sapien.database import unit_of_work
    from sapien.extensions import db

    with unit_of_work():
        return db.session.execute(delete(JobAttempt).where(JobAttempt.job_id == job_id)).rowcount > 0


# --- the reconciler ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PendingWork:
    func: str  # dotted path of a job in jobs/
    args: tuple
    job_id: str
    queue: str = "default"


PendingWorkSource = Callable[[], Iterable[PendingWork]]
_pending_work_sources: dict[str, PendingWorkSource] = {}
# Sources of periodic work (always "pending": each run schedules the next) rather than of rows.
_periodic_sources: set[str] = set()


def pending_work_source(name: str, *, periodic: bool = False):
    """Register a function that lists the work an area still has pending in its tables.

    `periodic` marks a source that always lists its next run (a sweep, a decay): it starts a chain, and
    the invariant check does not expect its work to be queued at every moment.
    """

    def decorator(source: PendingWorkSource) -> PendingWorkSource:
        _pending_work_sources[name] = source
        if periodic:
            _periodic_sources.add(name)
        else:
            _periodic_sources.discard(name)
        return source

    return decorator


def pending_rows() -> list[tuple[str, PendingWork]]:
    """The work the database says is still to do (periodic chains and given-up jobs left out)."""
    given_up = given_up_job_ids()
    return [
        (name, work) for name, source in sorted(_pending_work_sources.items()) if name not in _periodic_sources
        for work in source() if work.job_id not in given_up
    ]


def is_live(job_id: str) -> bool:
    job = _fetch(job_id, redis_connection())
    return job is not None and _is_live(job)


def reconcile() -> dict[str, int]:
    """Re-enqueue jobs of dead workers, then every pending piece of work; live jobs are left alone by
    `enqueue_once`."""
    from sapien.failpoints import failpoint

    counts = {"abandoned": len(requeue_abandoned())}
    given_up = given_up_job_ids()
    for name, source in sorted(_pending_work_sources.items()):
        count = 0
        for work in source():
            if work.job_id in given_up:
                continue  # listed on the jobs page; a moderator's retry queues it again
            enqueue_once(work.func, *work.args, job_id=work.job_id, queue=work.queue)
            count += 1
            failpoint(f"reconcile.{name}")
        counts[name] = count
    return counts


def reconcile_every() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("RECONCILE_EVERY_SECONDS", 60)))


def reconcile_job_id(at: datetime) -> str:
    """One id per period, so the chain of scheduled reconciles never doubles."""
    return f"maintenance-reconcile-{int(at.timestamp()) // int(reconcile_every().total_seconds())}"


@pending_work_source("maintenance-reconcile", periodic=True)
def _reconcile_pending():
    # Always pending: the worker's start-up reconcile begins the chain, each run schedules the next.
    from sapien.database import utcnow

    yield PendingWork("jobs.maintenance.reconcile_pending_work", (), reconcile_job_id(utcnow()))


class AppWorker(SimpleWorker):
    """An RQ worker that runs each job in the same process (no fork), with JSON payloads and a heartbeat.

    Jobs push their own app context (see jobs/__init__.py), so each gets a fresh database session.
    """

    def __init__(self, *args, app: Flask | None = None, **kwargs):
        kwargs.setdefault("serializer", JSONSerializer)
        super().__init__(*args, **kwargs)
        self.app = app
        self.pulse: Heartbeat | None = None

    def bootstrap(self, *args, **kwargs):
        super().bootstrap(*args, **kwargs)
        if self.app is not None:
            self.pulse = Heartbeat(self.app.config["REDIS_URL"], self.name, on_reset=self._after_redis_reset)
            self.pulse.start()

    def teardown(self):
        try:
            super().teardown()
        except RedisError as error:  # Redis went away as the worker stopped: its registry entry expires by itself
            log.warning("worker %s: could not record its stop in Redis: %s", self.name, error)
        finally:
            if self.pulse is not None:
                self.pulse.stop()

    def handle_job_success(self, job, queue, *args, **kwargs):
        super().handle_job_success(job, queue, *args, **kwargs)
        if self.app is not None:
            # A run that finished clears the job's count of dead runs (the next request starts afresh).
            try:
                with self.app.app_context():
                    forget_attempts(job.id)
            except Exception:  # noqa: BLE001 - the job itself succeeded
                log.exception("job %s: could not clear its count of abandoned runs", job.id)

    def _after_redis_reset(self) -> None:
        """Redis lost our keys: be listed by RQ again, and queue a reconcile (the queues were lost too)."""
        from rq import worker_registration

        log.warning("worker %s: Redis lost its state; re-registering and reconciling", self.name)
        connection = self.pulse.connection
        with connection.pipeline() as pipe:
            pipe.hset(self.key, mapping=self.serialize())
            pipe.expire(self.key, self.worker_ttl + 60)
            worker_registration.register(self, pipe)
            pipe.execute()
        with self.app.app_context():
            enqueue_once("jobs.maintenance.reconcile_pending_work", job_id=f"maintenance-reconcile-reset-{int(time.time())}")


def make_worker(queue_names: Iterable[str] = QUEUE_NAMES) -> AppWorker:
    connection = redis_connection()
    queues = [Queue(name, connection=connection, serializer=JSONSerializer) for name in queue_names]
    return AppWorker(queues, connection=connection, app=current_app._get_current_object())
