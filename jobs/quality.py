"""Quality jobs: batch aggregation of a pack, reputation decay."""

from __future__ import annotations

from jobs import app_context


def aggregate_pack(pack_id: int) -> dict:
    """Re-aggregate a pack's answers into verified labels, then clear its request (safe to run twice:
    labels are upserted; killed before the clear, the reconciler runs it again). A request made while it
    ran (the job was live, so no new one was queued) gets another pass, up to three."""
    from sapien.database import utcnow
    from sapien.failpoints import failpoint
    from sapien.quality.aggregation_queue import finish_aggregation_request
    from sapien.quality.batch import aggregate_pack as aggregate

    with app_context():
        for _ in range(3):
            started = utcnow()
            failpoint("aggregate.start")
            report = aggregate(pack_id, now=started)
            failpoint("aggregate.before-finish")
            if finish_aggregation_request(pack_id, started_at=started):
                break
        return {"pack_id": report.pack_id, "method": report.method, "answers": report.answers, "labels": report.labels_written}


def decay_reputation() -> int:
    """Drift inactive members' reputation toward the mean (once per ISO week per member)."""
    from sapien.database import utcnow
    from sapien.quality.reputation import decay_reputation as decay

    with app_context():
        return decay(utcnow())
