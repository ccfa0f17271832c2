"""Quality jobs: batch aggregation of a pack, reputation decay."""

from __future__ import annotations

from jobs import app_context


def aggregate_pack(pack_id: int) -> dict:
    """Re-aggregate a pack's answers into verified labels (safe to run twice: labels are upserted)."""
    from sapien.database import utcnow
    from sapien.quality.batch import aggregate_pack as aggregate

    with app_context():
        report = aggregate(pack_id, now=utcnow())
        return {"pack_id": report.pack_id, "method": report.method, "answers": report.answers, "labels": report.labels_written}


def decay_reputation() -> int:
    """Drift inactive members' reputation toward the mean (once per ISO week per member)."""
    from sapien.database import utcnow
    from sapien.quality.reputation import decay_reputation as decay

    with app_context():
        return decay(utcnow())
