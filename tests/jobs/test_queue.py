"""Queues, enqueue_once, the worker, the reconciler and the moderator jobs page, on real Redis."""

from __future__ import annotations

import pytest
from rq import Retry

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


def test_retry_policy_is_attached(app_ctx):
    job = enqueue_once("tests.jobs.sample_jobs.record_run", "c", job_id="record-c", retry=Retry(max=2))
    assert job.retries_left == 2
