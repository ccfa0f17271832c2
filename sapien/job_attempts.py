"""The database record of jobs that dead workers abandoned: how often, and whether we gave up on them.

A job that kills its worker every time (a crash in native code, the OOM killer) would otherwise be
re-enqueued forever, because the row behind it stays pending. `sapien.queue.requeue_abandoned` counts
each abandoned run here; after `JOB_MAX_ABANDONED_RUNS` the job is given up: the reconciler stops
re-enqueuing it, and it waits on the moderators' jobs page until someone retries it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db


class JobAttempt(db.Model):
    __tablename__ = "job_attempts"

    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    func: Mapped[str] = mapped_column(String(200))
    args: Mapped[list] = mapped_column(JSON, default=list)
    queue: Mapped[str] = mapped_column(String(32))
    abandoned_runs: Mapped[int] = mapped_column(Integer, default=0)
    # When the last counted run started, so two reconcilers seeing the same dead run count it once.
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    given_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
