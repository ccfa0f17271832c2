"""Governance's due work, for the reconciler (it runs every minute): each proposal whose voting period is
over gets `jobs.governance.close_proposal`, each whose timelock is over `jobs.governance.execute_proposal`,
under deterministic job ids. The database is the schedule: nothing is lost with Redis."""

from __future__ import annotations

from sapien.database import utcnow
from sapien.governance.proposals import due_to_close, due_to_execute
from sapien.queue import PendingWork, pending_work_source

JOBS = {"close": "jobs.governance.close_proposal", "execute": "jobs.governance.execute_proposal"}


def job_id(step: str, proposal_id: int) -> str:
    return f"governance-{step}-{proposal_id}"


@pending_work_source("governance")
def _due_steps():
    now = utcnow()
    for proposal_id in due_to_close(now):
        yield PendingWork(JOBS["close"], (proposal_id,), job_id("close", proposal_id))
    for proposal_id in due_to_execute(now):
        yield PendingWork(JOBS["execute"], (proposal_id,), job_id("execute", proposal_id))
