"""Ballots and tallies.

A member votes with the power frozen for them when the proposal opened (no snapshot row: no vote), once
(`governance_votes` is unique on proposal and member: a second vote changes the first, two at once make one
row), until the close. The proposal row is read with a share lock, so a vote and the close take turns:
a vote that commits before the close is counted, one after it is refused.

The tally is one aggregate over the proposal's votes (by choice), and the breakdown one more (by choice
and power bucket): a bucket is a voter's share of the proposal's frozen total power, so the page shows
whether many small holders or a few large ones carry the vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select

from sapien.database import as_utc, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.governance import rules
from sapien.governance.models import VOTE_CHOICES, PowerSnapshot, Proposal, Vote
from sapien.governance.proposals import GovernanceError, NotAllowed, ProposalNotFound

# Buckets by a voter's share of the proposal's total power (under 0.1 %, 0.1–1 %, 1–10 %, 10 % or more).
BUCKETS = (
    ("small", _l("under a thousandth of the power each")),
    ("medium", _l("a thousandth to a hundredth each")),
    ("large", _l("a hundredth to a tenth each")),
    ("whale", _l("a tenth of the power or more each")),
)


class VotingClosed(GovernanceError):
    pass


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=dict)  # choice → voters
    powers: dict[str, int] = field(default_factory=dict)  # choice → power

    def power(self, choice: str) -> int:
        return self.powers.get(choice, 0)

    def count(self, choice: str) -> int:
        return self.counts.get(choice, 0)

    @property
    def voters(self) -> int:
        return sum(self.counts.values())

    @property
    def cast(self) -> int:
        return sum(self.powers.values())


def cast_vote(user_id: int, proposal_id: int, choice: str, now: datetime) -> Vote:
    """Record (or change) the member's vote while the proposal is open."""
    if choice not in VOTE_CHOICES:
        raise GovernanceError(_l("Vote for, against or abstain."), field="choice")
    refusal = rules.may_vote(user_id, now)
    if refusal:
        raise NotAllowed(refusal)
    with unit_of_work() as session:
        proposal = session.scalar(
            select(Proposal).where(Proposal.id == proposal_id).with_for_update(read=True).execution_options(populate_existing=True)
        )
        if proposal is None:
            raise ProposalNotFound(_l("There is no such proposal."))
        if proposal.status != "voting" or now >= as_utc(proposal.closes_at):
            raise VotingClosed(_l("Voting on this proposal has closed."))
        power = session.scalar(select(PowerSnapshot.power).where(PowerSnapshot.proposal_id == proposal_id, PowerSnapshot.user_id == user_id))
        if not power:
            raise NotAllowed(_l("You had no voting power when this proposal opened: only stake held then counts."))
        statement = dialect_insert(Vote).values(proposal_id=proposal_id, user_id=user_id, choice=choice, power=power, cast_at=now, changed_at=now)
        session.execute(statement.on_conflict_do_update(
            index_elements=[Vote.proposal_id, Vote.user_id], set_={"choice": choice, "changed_at": now},
        ))
        vote = session.scalar(select(Vote).where(Vote.proposal_id == proposal_id, Vote.user_id == user_id).execution_options(populate_existing=True))
    return vote


def tally(proposal_id: int) -> Tally:
    """Voters and power per choice: one GROUP BY over the proposal's votes."""
    rows = db.session.execute(
        select(Vote.choice, func.count(), func.coalesce(func.sum(Vote.power), 0)).where(Vote.proposal_id == proposal_id).group_by(Vote.choice)
    )
    result = Tally()
    for choice, count, power in rows:
        result.counts[choice] = int(count)
        result.powers[choice] = int(power)
    return result


@dataclass(frozen=True)
class BucketRow:
    key: str
    label: str
    counts: dict[str, int]
    powers: dict[str, int]

    @property
    def voters(self) -> int:
        return sum(self.counts.values())


def breakdown(proposal: Proposal) -> list[BucketRow]:
    """Votes per power bucket (a voter's share of the total frozen power) and choice, in one aggregate."""
    total = max(proposal.total_power, 1)
    bucket = case(
        (Vote.power * 1000 < total, 0),
        (Vote.power * 100 < total, 1),
        (Vote.power * 10 < total, 2),
        else_=3,
    ).label("bucket")
    rows = db.session.execute(
        select(bucket, Vote.choice, func.count(), func.coalesce(func.sum(Vote.power), 0))
        .where(Vote.proposal_id == proposal.id).group_by(bucket, Vote.choice)
    )
    found: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
    for index, choice, count, power in rows:
        counts, powers = found.setdefault(int(index), ({}, {}))
        counts[choice], powers[choice] = int(count), int(power)
    return [BucketRow(key, str(label), *found.get(index, ({}, {}))) for index, (key, label) in enumerate(BUCKETS)]


def vote_of(user_id: int, proposal_id: int) -> Vote | None:
    return db.session.scalar(select(Vote).where(Vote.proposal_id == proposal_id, Vote.user_id == user_id))


def frozen_power_of(user_id: int, proposal_id: int) -> int:
    return db.session.scalar(
        select(PowerSnapshot.power).where(PowerSnapshot.proposal_id == proposal_id, PowerSnapshot.user_id == user_id)
    ) or 0
