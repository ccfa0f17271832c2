"""Who may propose and vote, how much a vote weighs, and the settings a vote runs by.

Voting power (frozen when a proposal opens)
-------------------------------------------
``power = floor(stake / a thousandth of a token) × (500 + reputation) // 1000``

*stake* is the member's staked tokens (their economy stake positions still ``staked``: locked, or past
their lock but not asked back; tokens cooling down to leave do not count), in thousandths of a token; *reputation* is quality's 0–1000 score (500 for a new member). The reputation
factor ``(500 + reputation) / 1000`` runs from 0.5 (reputation 0) through 1.0 (a new member) to 1.5
(reputation 1000): a member whose work is trusted weighs up to three times as much per staked token as
one whose work is not, so tokens bought without a record of good work cannot carry a vote alone. Power
grows linearly with stake, so splitting a stake over several accounts gains nothing.

The power of every member who holds some is written into ``governance_power_snapshots`` in one
``INSERT … SELECT`` when the proposal opens; only those rows vote, with that power, whatever they stake or
earn afterwards. Banned members get no row; a member banned or flagged later is refused at the ballot
(`may_vote`).

Proposing
---------
A member may propose when their level, reputation and stake reach the ``governance.proposal_min_*``
settings (level 3, reputation 550 and 1 staked token by default).

Settings
--------
The period, quorum, pass threshold, timelock and proposal thresholds are parameters of the economy's
parameter store (declared in `sapien/economy/parameters.py`), so they have a history and can themselves
be changed by a vote. A proposal copies them when it opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from sapien.accounts.models import User
from sapien.economy.models import StakePosition
from sapien.extensions import db
from sapien.governance.settings import setting
from sapien.i18n import TOKEN_UNIT, format_tokens
from sapien.moderation import verdicts
from sapien.progression.levels import member_level
from sapien.quality.reputation import reputation_of

POWER_UNIT = TOKEN_UNIT // 1000  # a thousandth of a token: stake counts in these
REPUTATION_BASE = 500  # factor (500 + reputation) / 1000: 0.5 … 1.5


def voting_power(stake: int, reputation: int) -> int:
    """The formula above, for one member (the snapshot computes the same in SQL)."""
    if stake <= 0:
        return 0
    return (stake // POWER_UNIT) * (REPUTATION_BASE + max(0, min(1000, reputation))) // 1000


@dataclass(frozen=True)
class Standing:
    """What a member brings to governance today, and what they lack to propose."""

    level: int
    reputation: int
    stake: int
    power_now: int
    missing: tuple[str, ...]  # translated reasons; empty when they may propose

    @property
    def may_propose(self) -> bool:
        return not self.missing


def staked_amount(user_id: int) -> int:
    """The member's tokens in `staked` positions (base units): what voting power and proposing count."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(StakePosition.amount), 0)).where(StakePosition.user_id == user_id, StakePosition.status == "staked")
    ))


def standing(user_id: int) -> Standing:
    level = member_level(user_id)
    reputation = reputation_of(user_id)
    stake = staked_amount(user_id)
    missing = []
    min_level = setting("governance.proposal_min_level")
    min_reputation = setting("governance.proposal_min_reputation")
    min_stake = setting("governance.proposal_min_stake")
    if level < min_level:
        missing.append(str(_l("Reach level %(level)s (you are level %(now)s).", level=min_level, now=level)))
    if reputation < min_reputation:
        missing.append(str(_l("Reach a reputation of %(needed)s (yours is %(now)s).", needed=min_reputation, now=reputation)))
    if stake < min_stake:
        missing.append(str(_l("Stake at least %(needed)s tokens.", needed=format_tokens(min_stake))))
    user = db.session.get(User, user_id)
    if user is None or user.is_banned:
        missing.append(str(_l("Banned members cannot propose.")))
    return Standing(level, reputation, stake, voting_power(stake, reputation), tuple(missing))


def flagged(user_id: int, now: datetime) -> bool:
    """Is this member flagged by trust & safety (an open flag, an active restriction or ban)? Flagged members
    cannot vote or propose."""
    return verdicts.is_flagged(user_id, now)


def may_vote(user_id: int, now: datetime) -> str | None:
    """None when the member may vote now, or the reason they may not (banned, flagged)."""
    user = db.session.get(User, user_id)
    if user is None or user.is_banned:
        return str(_l("Banned members cannot vote."))
    if flagged(user_id, now):
        return str(_l("Your account is under review by trust & safety: you cannot vote until it is cleared."))
    return None
