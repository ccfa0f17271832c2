"""Aggregation requests: the database row behind every queued aggregation.

Asking for an aggregation stamps the pack's `aggregation_requested_at` in the database, then queues the
job. The job clears the stamp once it has aggregated, but only if no newer request came in meanwhile.
So a stamped pack is aggregation work still to do, whatever happened to the queue (a flush, a worker
killed mid-run), and the reconciler queues it again from the stamp.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.labeling.models import TaskPack
from sapien.queue import PendingWork, enqueue_once, pending_work_source


def aggregation_job_id(pack_id: int) -> str:
    return f"quality-aggregate-{pack_id}"


def request_aggregation(pack_id: int, *, now: datetime):
    """Record the request, then queue the job (a queued or running one for the pack is reused)."""
    with unit_of_work():
        db.session.execute(update(TaskPack).where(TaskPack.id == pack_id).values(aggregation_requested_at=now))
    return enqueue_once("jobs.quality.aggregate_pack", pack_id, job_id=aggregation_job_id(pack_id))


def finish_aggregation_request(pack_id: int, *, started_at: datetime) -> bool:
    """Clear the pack's request if it is no newer than the run that just aggregated. True when no request
    is left; False when a newer one came in meanwhile (it needs another run)."""
    with unit_of_work():
        left = db.session.execute(
            update(TaskPack)
            .where(TaskPack.id == pack_id, TaskPack.aggregation_requested_at <= started_at)
            .values(aggregation_requested_at=None)
        ).rowcount == 0 and db.session.scalar(select(TaskPack.aggregation_requested_at).where(TaskPack.id == pack_id)) is not None
    return not left


def requested_pack_ids() -> list[int]:
    return list(db.session.scalars(select(TaskPack.id).where(TaskPack.aggregation_requested_at.is_not(None)).order_by(TaskPack.id)))


@pending_work_source("quality-aggregation")
def _pending_aggregations():
    for pack_id in requested_pack_ids():
        yield PendingWork("jobs.quality.aggregate_pack", (pack_id,), aggregation_job_id(pack_id))
