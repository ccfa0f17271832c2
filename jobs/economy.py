"""Economy jobs: the conversion of an ended epoch (points to tokens, once per member per epoch).

The reconciler queues it once an epoch has ended (economy/conversion.py lists due epochs as pending
work), under the id ``economy-convert-epoch-<number>``. Safe to run twice: members converted already
are skipped, and the ledger keys are unique.
"""

from __future__ import annotations

from jobs import app_context


def convert_epoch(epoch_id: int) -> dict:
    """Convert every member's unconverted points of the epoch and close it; returns its report."""
    from sapien.database import utcnow
    from sapien.economy.conversion import close_epoch

    with app_context():
        report = close_epoch(epoch_id, now=utcnow())
        return {"epoch": report.number, "members": report.members, "points": report.points, "skipped": report.skipped}
