"""Quality jobs: deciding items from their accepted answers, batch aggregation of a pack, reputation decay, the
escalation of reviews nobody took."""

from __future__ import annotations

from jobs import app_context


def decide_items() -> int:
    """Decide the items of every accepted answer that awaits its decision (quality/decisions.py); returns how
    many answers it weighed. Safe to run twice: the flags are cleared in the transaction that decides, and
    an item already decided is left as it is."""
    from sapien.database import utcnow
    from sapien.quality.decisions import decide_awaiting_items

    with app_context():
        return decide_awaiting_items(now=utcnow())


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


def escalate_reviews() -> int:
    """Send reviews that waited too long (or that no one may take) to the moderators' queue, then schedule
    the next sweep a minute later (safe to run twice: a review is escalated once)."""
    from sapien.database import utcnow
    from sapien.quality.escalation import ESCALATION_SWEEP_EVERY, escalation_sweep_job_id
    from sapien.quality.escalation import escalate_reviews as escalate
    from sapien.queue import schedule_once

    with app_context():
        now = utcnow()
        escalated = escalate(now)
        at = now + ESCALATION_SWEEP_EVERY
        schedule_once("jobs.quality.escalate_reviews", at, job_id=escalation_sweep_job_id(at))
        return len(escalated)
