"""kill -9 of real workers at named failpoints, SIGTERM during a long job: nothing is lost or done twice."""

from __future__ import annotations

import pytest
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from tests.faults.conftest import assert_invariants, reached, wait_for
from tests.faults.scenarios import (
    aggregation_requested,
    answered_pack,
    label_methods,
    mark_aggregation_requested,
    member_behind_on_levels,
    progression_of,
)

pytestmark = pytest.mark.faults


def broken(app) -> list[str]:
    from sapien.extensions import db
    from sapien.invariants import broken_invariants

    with app.app_context():
        db.session.remove()
        return broken_invariants()


def job_status(redis_conn, job_id: str):
    return Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).get_status()


def test_kill_9_during_aggregation_is_detected_and_the_job_runs_again(app, workers, redis_conn, tmp_path):
    from sapien.database import utcnow
    from sapien.quality.aggregation_queue import aggregation_job_id, request_aggregation

    pack_id = answered_pack(app, tmp_path)
    assert label_methods(app, pack_id) == ["online_vote", "online_vote"]
    with app.app_context():
        request_aggregation(pack_id, now=utcnow())
    worker = workers.start("aggregate.before-commit=kill")
    assert worker.wait() == -9  # killed itself inside the aggregation's transaction
    worker.kill9()  # and its scheduler: the whole worker is gone
    job_id = aggregation_job_id(pack_id)
    assert job_status(redis_conn, job_id) == JobStatus.STARTED  # what RQ still believes
    assert label_methods(app, pack_id) == ["online_vote", "online_vote"] and aggregation_requested(app, pack_id)
    # Within seconds the job counts as abandoned, and the invariant check says so.
    wait_for(lambda: any(f"job {job_id} is left running by dead worker" in line for line in broken(app)), timeout=10, what="the abandoned job")
    with app.app_context():
        from sapien.queue import is_live

        assert not is_live(job_id)
    assert workers.start(burst=True).wait() == 0  # a fresh worker reconciles, re-runs the job, drains
    assert label_methods(app, pack_id) == ["calibrated", "calibrated"]
    assert not aggregation_requested(app, pack_id)
    assert job_status(redis_conn, job_id) == JobStatus.FINISHED
    assert_invariants(app)


def test_kill_9_during_settlement_of_levels_and_badges_finishes_once(app, workers, redis_conn):
    from sapien.progression.pending import members_behind, sync_job_id
    from sapien.queue import enqueue_once

    user_id = member_behind_on_levels(app)
    with app.app_context():
        assert members_behind() == [user_id]
        enqueue_once("jobs.progression.sync_member_progress", user_id, job_id=sync_job_id(user_id))
    worker = workers.start("progression.sync.after-levels=kill")
    assert worker.wait() == -9  # levels committed, badges not yet
    worker.kill9()
    halfway = progression_of(app, user_id)
    assert halfway["levels"] == [2, 3, 4, 5] and halfway["level_notes"] == 1
    job_id = sync_job_id(user_id)
    wait_for(lambda: any(job_id in line for line in broken(app)), timeout=10, what="the abandoned job")
    # Asking again does not take the dead worker's job for a live one: a new run is queued.
    with app.app_context():
        again = enqueue_once("jobs.progression.sync_member_progress", user_id, job_id=job_id)
        assert again.get_status() == JobStatus.QUEUED
    assert workers.start(burst=True).wait() == 0
    after = progression_of(app, user_id)
    assert after["levels"] == [2, 3, 4, 5] and after["level"] == 5 and after["level_notes"] == 1
    assert after["badges"] and after["mints"] == len(after["badges"])  # one award and one mint request each
    assert_invariants(app)


def test_kill_9_during_a_reconcile_loses_no_pending_work(app, workers, redis_conn, tmp_path):
    packs = [answered_pack(app, tmp_path, items=1) for _ in range(3)]
    for pack_id in packs:
        mark_aggregation_requested(app, pack_id)  # committed, never enqueued
    worker = workers.start("reconcile.quality-aggregation=kill")
    assert worker.wait() == -9  # killed after queueing the first of the three
    worker.kill9()
    with app.app_context():
        from sapien.queue import get_queue

        assert [job_id for job_id in get_queue().get_job_ids() if job_id.startswith("quality-aggregate-")] == [f"quality-aggregate-{packs[0]}"]
    # The killed reconcile is itself an abandoned job once its worker's heartbeat has lapsed.
    wait_for(lambda: any("maintenance-reconcile-start-" in line for line in broken(app)), timeout=10, what="the abandoned reconcile")
    assert workers.start(burst=True).wait() == 0
    for pack_id in packs:
        assert label_methods(app, pack_id) == ["calibrated"] and not aggregation_requested(app, pack_id)
    assert_invariants(app)


def test_sigterm_during_a_long_job_lets_it_finish(app, workers, redis_conn, tmp_path):
    from sapien.database import utcnow
    from sapien.quality.aggregation_queue import aggregation_job_id, request_aggregation

    pack_id = answered_pack(app, tmp_path)
    with app.app_context():
        request_aggregation(pack_id, now=utcnow())
    worker = workers.start("aggregate.start=pause:3")
    assert reached(redis_conn, "aggregate.start") == worker.pid
    worker.term()  # a deploy: warm shutdown
    assert worker.wait() == 0
    with app.app_context():
        from sapien.queue import worker_count

        assert worker_count() == 0  # off /healthz at once, not after the heartbeat lapses
    assert label_methods(app, pack_id) == ["calibrated", "calibrated"] and not aggregation_requested(app, pack_id)
    assert job_status(redis_conn, aggregation_job_id(pack_id)) == JobStatus.FINISHED
    assert_invariants(app)
