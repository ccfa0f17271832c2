"""API jobs: webhook deliveries (one job per delivery and round; RQ retries a failed send with backoff), closing
a campaign whose deadline has passed, and the daily expiry of idempotency keys."""

from __future__ import annotations

from datetime import timedelta

from jobs import app_context


def deliver_webhook(delivery_id: int) -> str:
    """Send one webhook delivery (safe to run twice: a delivered or failed row is left as it is)."""
    from sapien.api.webhooks import attempt_delivery
    from sapien.database import utcnow

    with app_context():
        return attempt_delivery(delivery_id, now=utcnow())


def deliver_webhooks(webhook_id: int) -> int:
    """Send a webhook's new deliveries in batches (safe to run twice: only first attempts still pending are sent)."""
    from sapien.api.webhooks import deliver_pending
    from sapien.database import utcnow

    with app_context():
        return deliver_pending(webhook_id, now=utcnow())


def close_campaign_at_deadline(campaign_id: int) -> bool:
    """Close a campaign whose deadline has passed and tell its client (safe to run twice: it closes once)."""
    from sapien.api.deadlines import close_at_deadline
    from sapien.database import utcnow

    with app_context():
        return close_at_deadline(campaign_id, now=utcnow())


def expire_idempotency_keys() -> int:
    """Delete idempotency keys past their keeping period, then schedule tomorrow's run; returns how many went."""
    from sapien.api.idempotency import EXPIRY_JOB, expire_keys, expiry_job_id
    from sapien.database import utcnow
    from sapien.queue import schedule_once

    with app_context():
        now = utcnow()
        deleted = expire_keys(now)
        at = now + timedelta(days=1)
        schedule_once(EXPIRY_JOB, at, job_id=expiry_job_id(at))
        return deleted
