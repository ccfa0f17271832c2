"""Queues, enqueue_once, the worker, the reconciler and the moderator jobs page, on real Redis."""

from __future__ import annotations

import pytest

from sapien.queue import (
    PendingWork,
    _pending_work_sources,
    enqueue_once,
    get_queue,
    list_jobs,
    make_worker,
    pending_work_source,
    reconcile,
)


def runs(redis_conn) -> list[str]:
    return [item.decode() for item in redis_conn.lrange("test:runs", 0, -1)]


def test_enqueue_once_is_a_no_op_for_a_live_duplicate(app_ctx, redis_conn):
    first = enqueue_once("tests.jobs.sample_jobs.record_run", "a", job_id="record-a")
    second = enqueue_once("tests.jobs.sample_jobs.record_run", "a", job_id="record-a")
    assert first.id == second.id
    assert get_queue().count == 1
    make_worker().work(burst=True)
    assert runs(redis_conn) == ["a"]


def test_job_ids_are_restricted(app_ctx):
    with pytest.raises(ValueError):
        enqueue_once("tests.jobs.sample_jobs.record_run", "a", job_id="bad id:1")


def test_job_payloads_are_json(app_ctx):
    job = enqueue_once("tests.jobs.sample_jobs.record_run", "json", job_id="json-1")
    import json
    import zlib

    raw = get_queue().connection.hget(f"rq:job:{job.id}", "data")
    assert json.loads(zlib.decompress(raw))[2] == ["json"]  # the JSON serializer, not pickle


def test_a_finished_job_can_run_again_and_is_safe_twice(app_ctx, redis_conn):
    enqueue_once("tests.jobs.sample_jobs.record_run", "b", job_id="record-b")
    make_worker().work(burst=True)
    enqueue_once("tests.jobs.sample_jobs.record_run", "b", job_id="record-b")
    make_worker().work(burst=True)
    assert runs(redis_conn) == ["b", "b"]


@pytest.fixture
def pending_source():
    pending = [PendingWork("tests.jobs.sample_jobs.record_run", ("pending-1",), "pending-1")]

    @pending_work_source("test-source")
    def source():
        return list(pending)

    yield pending
    _pending_work_sources.pop("test-source", None)


def test_reconciler_re_enqueues_pending_work_once(app_ctx, redis_conn, pending_source):
    assert reconcile()["test-source"] == 1
    assert reconcile()["test-source"] == 1  # already queued: still one job
    assert get_queue().get_job_ids().count("pending-1") == 1
    redis_conn.delete("rq:queue:default")  # the queue is lost …
    reconcile()  # … and the database still knows the work is pending
    make_worker().work(burst=True)
    assert "pending-1" in runs(redis_conn)


def test_reconcile_job_runs_twice_safely(app_ctx, redis_conn, pending_source):
    from jobs.maintenance import reconcile_pending_work

    assert reconcile_pending_work()["test-source"] == 1
    assert reconcile_pending_work()["test-source"] == 1
    make_worker().work(burst=True)
    assert runs(redis_conn).count("pending-1") == 1


def test_moderator_sees_failed_jobs_and_retries_them(app, make_member, redis_conn):
    moderator = make_member("mod", role="moderator")
    with app.app_context():
        enqueue_once("tests.jobs.sample_jobs.always_fail", "x", job_id="doomed-1", retry=None)
        make_worker().work(burst=True)
        assert [job.id for job in list_jobs()["failed"]] == ["doomed-1"]
    page = moderator.client.get("/moderation/jobs").get_data(as_text=True)
    assert "doomed-1" in page and "failing on purpose: x" in page
    fragment = moderator.client.get("/moderation/jobs", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "doomed-1" in fragment and "<html" not in fragment
    response = moderator.post("/moderation/jobs/doomed-1/retry")
    assert response.status_code == 303
    with app.app_context():
        assert [job.id for job in list_jobs()["queued"]] == ["doomed-1"]
    assert moderator.post("/moderation/jobs/no-such-job/retry").status_code == 404


def job_functions() -> list[str]:
    """Every job in jobs/: the public functions of its modules, except the helpers named here."""
    import importlib
    import inspect
    import pkgutil

    import jobs

    helpers = {"jobs.labeling.schedule_sweep"}
    found = []
    for module_info in pkgutil.iter_modules(jobs.__path__):
        if module_info.name == "worker":
            continue
        module = importlib.import_module(f"jobs.{module_info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            dotted = f"jobs.{module_info.name}.{name}"
            if function.__module__ == module.__name__ and not name.startswith("_") and dotted not in helpers:
                found.append(dotted)
    return sorted(found)


def test_every_job_kind_has_its_own_timeout():
    from sapien.queue import DEFAULT_JOB_TIMEOUT, JOB_TIMEOUTS, job_timeout_for

    assert sorted(JOB_TIMEOUTS) == job_functions()
    assert all(seconds > 0 for seconds in JOB_TIMEOUTS.values())
    assert JOB_TIMEOUTS["jobs.quality.aggregate_pack"] > DEFAULT_JOB_TIMEOUT  # 100,000 answers take a while
    with pytest.raises(ValueError):
        job_timeout_for("jobs.quality.not_a_timed_job")


def test_the_apps_jobs_carry_the_retry_policy_and_their_timeout(app_ctx, tmp_path):
    """The jobs the app itself queues (a button, the reconciler, a schedule) get RQ's Retry with the app's
    intervals and their kind's timeout."""
    from sapien.database import utcnow
    from sapien.quality.batch import enqueue_aggregation
    from sapien.queue import DEFAULT_RETRY, JOB_TIMEOUTS, get_queue, reconcile_job_id, schedule_once
    from tests.quality.conftest import make_pack

    with app_ctx.test_request_context():
        pack = make_pack(tmp_path, items=1)
        jobs = [enqueue_aggregation(pack.id, now=utcnow())]
    reconcile()
    jobs += [get_queue().fetch_job(job_id) for job_id in get_queue().get_job_ids()]
    at = utcnow()
    jobs.append(get_queue().fetch_job(schedule_once("jobs.maintenance.reconcile_pending_work", at, job_id=reconcile_job_id(at))))
    kinds = {job.func_name for job in jobs}
    assert {"jobs.quality.aggregate_pack", "jobs.labeling.expire_leases", "jobs.quality.decay_reputation",
            "jobs.maintenance.reconcile_pending_work"} <= kinds
    assert DEFAULT_RETRY.max >= 3 and DEFAULT_RETRY.intervals == [10, 30, 120]
    for job in jobs:
        assert (job.retries_left, job.retry_intervals) == (DEFAULT_RETRY.max, DEFAULT_RETRY.intervals), job.id
        assert job.timeout == JOB_TIMEOUTS[job.func_name], job.id


def test_aggregation_requests_are_pending_work_until_a_run_after_them_finishes(app_ctx, tmp_path, redis_conn):
    from datetime import timedelta

    from sapien.database import utcnow
    from sapien.quality.aggregation_queue import finish_aggregation_request, request_aggregation, requested_pack_ids
    from tests.quality.conftest import make_pack

    with app_ctx.test_request_context():
        pack = make_pack(tmp_path, items=1)
    now = utcnow()
    request_aggregation(pack.id, now=now)
    assert requested_pack_ids() == [pack.id]
    redis_conn.flushdb()  # the queue is lost: the reconciler still knows
    assert reconcile()["quality-aggregation"] == 1
    assert f"quality-aggregate-{pack.id}" in get_queue().get_job_ids()
    assert not finish_aggregation_request(pack.id, started_at=now - timedelta(seconds=1))  # a run older than the request
    assert requested_pack_ids() == [pack.id]
    make_worker().work(burst=True)
    assert requested_pack_ids() == []
    assert finish_aggregation_request(pack.id, started_at=now)  # nothing left to do


def _die_running(job_id: str, started_at) -> None:
    """Leave the job "started" by a worker that never beats: what a kill -9 mid-run leaves in Redis."""
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry
    from rq.serializers import JSONSerializer

    from sapien.queue import redis_connection

    connection = redis_connection()
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    get_queue().remove(job)
    job.worker_name, job.started_at = "dead-worker", started_at
    job.set_status(JobStatus.STARTED)
    job.save()
    registry = StartedJobRegistry(queue=get_queue())
    connection.zadd(registry.key, {f"{job.id}:run-{started_at.timestamp():.0f}": started_at.timestamp() + 600})  # as RQ records an execution


def test_a_job_abandoned_again_and_again_is_given_up_shown_and_retried(app, make_member, redis_conn):
    from datetime import UTC, datetime, timedelta

    from sapien.queue import given_up_job_ids, is_live, requeue_abandoned, retry_failed_job

    moderator = make_member("mod2", role="moderator")
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with app.app_context():
        enqueue_once("tests.jobs.sample_jobs.record_run", "z", job_id="doomed-2")
        for run in range(3):
            _die_running("doomed-2", started + timedelta(minutes=run))
            assert requeue_abandoned() == (["doomed-2"] if run < 2 else [])
        assert given_up_job_ids() == {"doomed-2"} and not is_live("doomed-2")
        assert "doomed-2" in [job.id for job in list_jobs()["failed"]]
    page = moderator.client.get("/moderation/jobs").get_data(as_text=True)
    assert "doomed-2" in page and "abandoned it 3 times" in page
    fragment = moderator.client.get("/moderation/jobs", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "doomed-2" in fragment and "<html" not in fragment
    assert moderator.post("/moderation/jobs/doomed-2/retry").status_code == 303
    with app.app_context():
        assert given_up_job_ids() == set() and is_live("doomed-2")
        make_worker().work(burst=True)
        assert not retry_failed_job("doomed-2")
    assert runs(redis_conn) == ["z"]


def test_run_soon_arms_one_delayed_run_and_a_running_one_gets_a_follow_up(app_ctx, redis_conn):
    """Batch jobs: calls while a run waits cost nothing more; once it runs (and disarmed itself), the next
    call queues a follow-up under the job's second id, since the running one may have read too early."""
    import time
    from datetime import UTC, datetime

    from rq.registry import ScheduledJobRegistry

    from sapien.batch_jobs import disarm, run_soon
    from sapien.queue import HEARTBEAT_KEY

    job_id = "record-batch"
    for _ in range(3):
        run_soon("tests.jobs.sample_jobs.record_run", job_id=job_id, delay_seconds=30)
    scheduled = ScheduledJobRegistry(queue=get_queue())
    assert scheduled.get_job_ids() == [job_id] and get_queue().count == 0  # one run, a moment later
    run_at = scheduled.get_scheduled_time(job_id)
    assert 25 < (run_at - datetime.now(UTC)).total_seconds() <= 30

    # The run starts (on a live worker) and disarms: the next call needs a run that starts after it.
    _die_running(job_id, datetime.now(UTC))
    redis_conn.zadd(HEARTBEAT_KEY, {"live-worker": time.time()})
    from rq.job import Job
    from rq.serializers import JSONSerializer

    job = Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)
    job.worker_name = "live-worker"
    job.save()
    scheduled.remove(job_id)
    disarm(job_id)
    run_soon("tests.jobs.sample_jobs.record_run", job_id=job_id, delay_seconds=30)
    run_soon("tests.jobs.sample_jobs.record_run", job_id=job_id, delay_seconds=30)
    assert scheduled.get_job_ids() == [f"{job_id}-next"]
