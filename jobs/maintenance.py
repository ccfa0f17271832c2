"""Housekeeping jobs."""

from __future__ import annotations

from jobs import app_context


def reconcile_pending_work() -> dict[str, int]:
    from sapien.queue import reconcile

    with app_context():
        return reconcile()
