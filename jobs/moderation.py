"""Trust & safety jobs: the daily retention sweep (old signals deleted, ended bans lifted) and the hourly
scan (detectors and the fraud model into flags). Both are periodic work the reconciler starts; each run
schedules the next under a deterministic per-day or per-hour id, and both are safe to run twice."""

from __future__ import annotations

from datetime import timedelta

from jobs import app_context


def enforce_retention() -> int:
    """Delete signals past the retention period and lift bans whose time is up; returns signals deleted."""
    from sapien.database import utcnow
    from sapien.moderation.safety.decisions import lift_expired_bans
    from sapien.moderation.signals import RETENTION_JOB, retention_job_id
    from sapien.moderation.signals import enforce_retention as sweep
    from sapien.queue import schedule_once

    with app_context():
        now = utcnow()
        deleted = sweep(now)
        lift_expired_bans(now)
        at = now + timedelta(days=1)
        schedule_once(RETENTION_JOB, at, job_id=retention_job_id(at))
        return deleted


def scan() -> int:
    """Run every detector and the fraud model; returns how many flags it opened."""
    from sapien.database import utcnow
    from sapien.moderation.safety.scan import SCAN_JOB, run_scan, scan_job_id
    from sapien.queue import schedule_once

    with app_context():
        now = utcnow()
        report = run_scan(now)
        at = now + timedelta(hours=1)
        schedule_once(SCAN_JOB, at, job_id=scan_job_id(at))
        return report.flags_opened
