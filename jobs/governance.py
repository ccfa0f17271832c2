"""Governance jobs: close a proposal's vote when its period ends, apply a passed change when its timelock
ends (both safe to run twice: the proposal's state machine moves once)."""

from __future__ import annotations

from jobs import app_context


def close_proposal(proposal_id: int) -> str:
    """Tally and decide the proposal if its period is over; returns its status."""
    from sapien.database import utcnow
    from sapien.governance.proposals import close_proposal as close

    with app_context():
        return close(proposal_id, utcnow()).status


def execute_proposal(proposal_id: int) -> str:
    """Apply the passed change through the parameter store once its timelock is over; returns its status."""
    from sapien.database import utcnow
    from sapien.governance.proposals import execute_proposal as execute

    with app_context():
        return execute(proposal_id, utcnow()).status
