"""Governance's settings, kept in the economy's parameter store (so they have a history and can be changed
by a vote like any other): registered into `PARAMETERS` when this module loads.

The defaults: a vote runs 72 hours; 10 % of the frozen power must take part (for, against or abstain);
a change passes with more than 50 % of the power cast for or against; a passed change waits 48 hours
before it applies; a member proposes from level 3, reputation 550 and 1 staked token.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import lazy_gettext as _l

from sapien.economy import parameters as store
from sapien.i18n import TOKEN_UNIT

TOKEN = TOKEN_UNIT


def _whole(low: int, high: int) -> Callable[[object], None]:
    def validate(value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise store.ParameterError(_l("Enter a whole number from %(low)s to %(high)s.", low=f"{low:,}", high=f"{high:,}"))

    return validate


SPECS = (
    store.ParameterSpec("governance.voting_period_hours", "int", 72, _l("How long a proposal is open for voting, in hours."), _whole(1, 24 * 60)),
    store.ParameterSpec("governance.quorum_bp", "basis_points", 1_000,
                        _l("Share of the frozen voting power that must take part for a vote to count."), _whole(0, 10_000)),
    store.ParameterSpec("governance.pass_threshold_bp", "basis_points", 5_000,
                        _l("A proposal passes with more than this share of the power cast for or against."), _whole(0, 9_999)),
    store.ParameterSpec("governance.timelock_hours", "int", 48, _l("How long a passed change waits before it applies, in hours."),
                        _whole(0, 24 * 60)),
    store.ParameterSpec("governance.proposal_min_level", "int", 3, _l("The level a member needs to propose."), _whole(1, 100)),
    store.ParameterSpec("governance.proposal_min_reputation", "int", 550, _l("The reputation a member needs to propose."), _whole(0, 1000)),
    store.ParameterSpec("governance.proposal_min_stake", "token_amount", 1 * TOKEN, _l("The stake a member needs to propose."),
                        _whole(0, 10**6 * TOKEN)),
)
for _spec in SPECS:
    store.PARAMETERS.setdefault(_spec.name, _spec)


def setting(name: str) -> int:
    return int(store.get_parameter(name))
