"""Governance's own settings: defaults until the economy's parameter store is merged."""

from __future__ import annotations

TOKEN = 10**18

DEFAULTS: dict[str, int] = {
    "governance.voting_period_hours": 72,
    "governance.quorum_bp": 1000,  # 10 % of the frozen power must take part (for, against or abstain)
    "governance.pass_threshold_bp": 5000,  # more than 50 % of the power cast for or against
    "governance.timelock_hours": 48,
    "governance.proposal_min_level": 3,
    "governance.proposal_min_reputation": 550,
    "governance.proposal_min_stake": 1 * TOKEN,
}


def setting(name: str) -> int:
    return DEFAULTS[name]
