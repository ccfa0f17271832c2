"""RQ plumbing: Redis connection, queues, `enqueue_once`, the worker, and the reconciler.

The database is the source of truth (DESIGN rule 2): a queue can be flushed, and `reconcile`
re-enqueues every piece of pending work that some area still has in its tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import current_app
from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

QUEUE_NAMES = ("default", "chain")
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
DEFAULT_RETRY = Retry(max=3, interval=[10, 30, 120])
# A job in these states is about to do the work; enqueueing the same id again does nothing.
# Finished or failed jobs may be enqueued again: every job is safe to run twice.
LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


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
        try:
            existing = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        except Exception:  # noqa: BLE001 - rq raises NoSuchJobError or a decode error for stale data
            existing = None
        if existing is not None and _is_live(existing):
            return existing
        if existing is not None:
            existing.delete()
        return get_queue(queue).enqueue(func, *args, job_id=job_id, retry=retry, at_front=at_front, result_ttl=86400, failure_ttl=7 * 86400)


def _is_live(job: Job) -> bool:
    """Is the job really waiting or running? A lost queue list can leave a "queued" job hash behind."""
    status = job.get_status(refresh=True)
    if status not in LIVE_STATUSES:
        return False
    queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
    if status == JobStatus.QUEUED:
        return job.connection.lpos(queue.key, job.id) is not None
    if status == JobStatus.STARTED:
        return job.id in StartedJobRegistry(queue=queue)
    if status == JobStatus.SCHEDULED:
        return job.id in ScheduledJobRegistry(queue=queue)
    return True


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
    return found


def retry_failed_job(job_id: str) -> bool:
    """Put a failed job back on its queue. False if no failed job has that id."""
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(queue=get_queue(name))
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return True
    return False


def worker_count() -> int:
    return len(SimpleWorker.all(connection=redis_connection()))


# --- the reconciler ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PendingWork:
    func: str  # dotted path of a job in jobs/
    args: tuple
    job_id: str
    queue: str = "default"


PendingWorkSource = Callable[[], Iterable[PendingWork]]
_pending_work_sources: dict[str, PendingWorkSource] = {}


def pending_work_source(name: str):
    """Register a function that lists the work an area still has pending in its tables."""

    def decorator(source: PendingWorkSource) -> PendingWorkSource:
        _pending_work_sources[name] = source
        return source

    return decorator


def reconcile() -> dict[str, int]:
    """Re-enqueue every pending piece of work; live jobs are left alone by `enqueue_once`."""
    counts = {}
    for name, source in sorted(_pending_work_sources.items()):
        count = 0
        for work in source():
            enqueue_once(work.func, *work.args, job_id=work.job_id, queue=work.queue)
            count += 1
        counts[name] = count
    return counts


class AppWorker(SimpleWorker):
    """An RQ worker that runs each job in the same process (no fork), with JSON payloads.

    Jobs push their own app context (see jobs/__init__.py), so each gets a fresh database session.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("serializer", JSONSerializer)
        super().__init__(*args, **kwargs)


def make_worker(queue_names: Iterable[str] = QUEUE_NAMES) -> AppWorker:
    connection = redis_connection()
    queues = [Queue(name, connection=connection, serializer=JSONSerializer) for name in queue_names]
    return AppWorker(queues, connection=connection)
