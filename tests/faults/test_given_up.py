"""A job that kills its worker on every run is given up after a few runs, not re-enqueued forever."""

from __future__ import annotations

import pytest

from tests.faults.conftest import assert_invariants, wait_for
from tests.faults.scenarios import aggregation_requested, answered_pack, label_methods

pytestmark = pytest.mark.faults


def abandoned(app, job_id: str) -> bool:
    from sapien.extensions import db
    from sapien.queue import abandoned_jobs

    with app.app_context():
        db.session.remove()
        return any(job.id == job_id for job in abandoned_jobs())


def attempt(app, job_id: str):
    from sapien.extensions import db
    from sapien.job_attempts import JobAttempt

    with app.app_context():
        db.session.remove()
        record = db.session.get(JobAttempt, job_id)
        return None if record is None else (record.abandoned_runs, record.given_up_at is not None)


def test_a_job_that_kills_every_worker_is_given_up_and_waits_for_a_moderator(app, workers, redis_conn, tmp_path):
    from sapien.database import utcnow
    from sapien.quality.aggregation_queue import aggregation_job_id, request_aggregation

    pack_id = answered_pack(app, tmp_path)
    job_id = aggregation_job_id(pack_id)
    with app.app_context():
        request_aggregation(pack_id, now=utcnow())
    for run in range(1, 4):
        worker = workers.start("aggregate.before-commit=kill")
        assert worker.wait() == -9  # the aggregation killed its worker again
        worker.kill9()
        wait_for(lambda: abandoned(app, job_id), timeout=15, what=f"run {run} to count as abandoned")
        # Runs 2 and 3 were re-enqueued by the next worker's start-up reconcile, which counted the run before.
        assert attempt(app, job_id) == (None if run == 1 else (run - 1, False))
    # The fourth worker's reconcile counts the third dead run and gives the job up: it drains and exits.
    assert workers.start("aggregate.before-commit=kill", burst=True).wait() == 0
    assert attempt(app, job_id) == (3, True)
    assert aggregation_requested(app, pack_id)  # the row is still pending work...
    assert label_methods(app, pack_id) == ["online_vote", "online_vote"]
    with app.app_context():
        from sapien.queue import is_live, list_jobs, reconcile

        assert reconcile()["quality-aggregation"] == 0  # ...which the reconciler no longer re-enqueues
        assert not is_live(job_id)
        failed = {row.id: row for row in list_jobs()["failed"]}
        assert job_id in failed and "3" in str(failed[job_id].error)  # the moderators see it with the failed jobs
    assert_invariants(app)  # a given-up job is reported on the jobs page, not as a broken invariant

    # A moderator's retry (after the crash is fixed) runs it once more, from scratch.
    with app.app_context():
        from sapien.queue import retry_failed_job

        assert retry_failed_job(job_id)
    assert workers.start(burst=True).wait() == 0
    assert "online_vote" not in label_methods(app, pack_id) and not aggregation_requested(app, pack_id)  # aggregated
    assert attempt(app, job_id) is None
    assert_invariants(app)

