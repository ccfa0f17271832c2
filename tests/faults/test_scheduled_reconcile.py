"""The reconciler runs on the worker's scheduler: a row committed without its job (a crash between the
commit and the enqueue) is finished without anyone starting a worker or pressing a button."""

from __future__ import annotations

import pytest
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from tests.faults.conftest import assert_invariants, wait_for
from tests.faults.scenarios import aggregation_requested, answered_pack, label_methods, mark_aggregation_requested

pytestmark = pytest.mark.faults


def test_a_row_committed_without_its_job_is_finished_by_the_scheduled_reconciler(app, workers, redis_conn, tmp_path):
    from sapien.queue import get_queue

    pack_id = answered_pack(app, tmp_path)
    workers.start(RECONCILE_EVERY_SECONDS=2)
    with app.app_context():
        scheduled = ScheduledJobRegistry(queue=get_queue())
        finished = FinishedJobRegistry(queue=get_queue())
        # The start-up reconcile ran and scheduled the next one: from now on only the schedule reconciles.
        start_runs = wait_for(lambda: [i for i in finished.get_job_ids() if i.startswith("maintenance-reconcile-start-")], what="the start-up reconcile")
        assert len(start_runs) == 1
        assert any(i.startswith("maintenance-reconcile-") for i in scheduled.get_job_ids())
        wait_for(lambda: get_queue().count == 0, what="the start-up work to drain")
        mark_aggregation_requested(app, pack_id)  # committed; the enqueue "crashed"
        # The labels commit first, then the request is cleared: wait for both.
        wait_for(lambda: label_methods(app, pack_id) == ["calibrated", "calibrated"] and not aggregation_requested(app, pack_id), timeout=15,
                 what="the scheduled reconciler to run the aggregation")
        ticks = [i for i in finished.get_job_ids() if i.startswith("maintenance-reconcile-") and not i.startswith("maintenance-reconcile-start-")]
        assert ticks, "a scheduled reconcile ran"
        assert [i for i in finished.get_job_ids() if i.startswith("maintenance-reconcile-start-")] == start_runs
    assert_invariants(app)
