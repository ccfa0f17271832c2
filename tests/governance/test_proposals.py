"""Proposals: who may propose, what, the frozen power, the close, the timelock and the execution."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sapien.i18n import TOKEN_UNIT
from tests.governance.conftest import HOUR, NOW, TOKEN, give, make_user, proposer, rate_draft, staker


def test_below_the_threshold_a_member_cannot_propose_and_is_told_what_is_missing(ctx):
    from sapien.governance import proposals

    novice = make_user()
    with pytest.raises(proposals.NotAllowed) as refused:
        proposals.create_proposal(novice, rate_draft(), NOW)
    message = str(refused.value)
    assert "Reach level 3" in message and "reputation of 550" in message and "Stake at least 1 tokens" in message
    give(novice, xp=300, reputation=600)
    with pytest.raises(proposals.NotAllowed, match="Stake at least 1 tokens"):
        proposals.create_proposal(novice, rate_draft(), NOW)
    give(novice, stake=TOKEN)
    assert proposals.create_proposal(novice, rate_draft(), NOW).status == "voting"


def test_invalid_parameter_values_are_refused_with_the_stores_message(ctx):
    from sapien.extensions import db
    from sapien.governance import proposals
    from sapien.governance.models import Proposal

    author = proposer()
    cases = [
        ("reward.rate.text_classification", -5, "new_value", "Enter a whole number from 0"),
        ("reward.rate.text_classification", 10_000, "new_value", "already the setting's value"),
        ("revenue.split", {"contributors": 5000, "stakers": 2000, "treasury": 1000}, "new_value", "add up to 100"),
        ("no.such.setting", 1, "parameter_name", "Choose a setting"),
    ]
    for name, value, field, message in cases:
        draft = proposals.ProposalDraft("parameter", "A change", parameter_name=name, new_value=value)
        with pytest.raises(proposals.GovernanceError) as refused:
            proposals.create_proposal(author, draft, NOW)
        assert refused.value.field == field and message in str(refused.value), (name, value)
    with pytest.raises(proposals.GovernanceError, match="Name the task type"):
        proposals.create_proposal(author, proposals.ProposalDraft("task_type", "New", task_type_name=" "), NOW)
    assert db.session.query(Proposal).count() == 0
    # What a member types is read by the setting's kind: tokens as decimals, numbers with separators.
    assert proposals.parse_value("governance.proposal_min_stake", "1.5") == 3 * TOKEN_UNIT // 2
    assert proposals.parse_value("reward.rate.text_classification", "12,500") == 12_500
    with pytest.raises(proposals.GovernanceError, match="whole number"):
        proposals.parse_value("reward.rate.text_classification", "lots")


def test_voting_power_is_stake_times_reputation_factor_frozen_at_open(ctx):
    from sapien.accounts import service as accounts
    from sapien.extensions import db
    from sapien.governance import proposals, rules
    from sapien.governance.models import PowerSnapshot

    author = proposer(stake=2 * TOKEN)  # reputation 600: factor 1.1
    trusted = staker(2 * TOKEN, reputation=1000)  # factor 1.5
    untrusted = staker(2 * TOKEN, reputation=0)  # factor 0.5
    dust = staker(TOKEN_UNIT // 10_000)  # below a thousandth of a token: no power
    banned = staker(3 * TOKEN)
    accounts.ban(banned, "spam")
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    powers = dict(db.session.query(PowerSnapshot.user_id, PowerSnapshot.power).filter_by(proposal_id=proposal.id).all())
    assert powers == {author: 2200, trusted: 3000, untrusted: 1000}
    assert dust not in powers and banned not in powers
    assert rules.voting_power(2 * TOKEN, 1000) == 3000
    assert (proposal.total_power, proposal.eligible_voters) == (6200, 3)
    assert proposal.old_value == 10_000 and proposal.new_value == 20_000
    assert proposal.closes_at == NOW + 72 * HOUR and proposal.quorum_bp == 1000 and proposal.threshold_bp == 5000


def test_stake_asked_back_no_longer_counts(ctx):
    """A member who asked to unstake (their tokens cool down to leave) has no say in later proposals."""
    from sapien.economy import staking
    from sapien.economy.models import StakePosition
    from sapien.extensions import db
    from sapien.governance import proposals, rules

    author = proposer()
    leaving = staker(3 * TOKEN)
    position = db.session.query(StakePosition).filter_by(user_id=leaving).one()
    later = NOW + 31 * 24 * HOUR  # past the one-month lock
    staking.request_unstake(leaving, position.id, now=later)
    assert rules.staked_amount(leaving) == 0
    proposal = proposals.create_proposal(author, rate_draft(), later)
    assert (proposal.eligible_voters, proposal.total_power) == (1, 2200)


def _vote_and_close(votes: dict[int, str], *, proposal_id: int):
    from sapien.governance import proposals, voting

    for user_id, choice in votes.items():
        voting.cast_vote(user_id, proposal_id, choice, NOW + HOUR)
    closes_at = proposals.get_proposal(proposal_id).closes_at
    return proposals.close_proposal(proposal_id, closes_at)


def test_a_majority_with_quorum_passes_and_is_queued_behind_the_timelock(ctx):
    from sapien.governance import proposals

    author = proposer()
    against = staker(TOKEN)
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    assert proposals.close_proposal(proposal.id, NOW + HOUR).status == "voting"  # not over yet: nothing changes
    closed = _vote_and_close({author: "for", against: "against"}, proposal_id=proposal.id)
    assert closed.status == "queued"
    assert (closed.power_for, closed.power_against, closed.voters) == (2200, 1000, 2)
    assert closed.executable_at == closed.closes_at + 48 * HOUR


def test_votes_without_a_majority_or_quorum_fail(ctx):
    from sapien.governance import proposals

    people = {"author": proposer(), "big": staker(5 * TOKEN), "twin": staker(2 * TOKEN, reputation=600)}
    for votes, why in [
        ({"author": "for", "big": "against"}, "majority against"),
        ({"author": "for", "twin": "against"}, "a tie fails"),
        ({}, "no quorum"),
    ]:
        proposal = proposals.create_proposal(people["author"], rate_draft(), NOW)
        closed = _vote_and_close({people[name]: choice for name, choice in votes.items()}, proposal_id=proposal.id)
        assert closed.status == "failed" and closed.executable_at is None, why
    from sapien.notifications.service import recent

    assert [n.kind for n in recent(people["author"]) if n.kind.startswith("proposal")] == ["proposal_failed"] * 3


def test_quorum_counts_abstentions_but_the_threshold_does_not(ctx):
    from sapien.governance import proposals

    author = proposer(stake=TOKEN)  # power 1100, alone under the quorum of 10 % of 21,100
    abstainer = staker(8 * TOKEN)  # power 8000: the quorum comes from the abstention
    staker(8 * TOKEN, reputation=1000)  # power 12,000 that stays home
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    assert _vote_and_close({author: "for", abstainer: "abstain"}, proposal_id=proposal.id).status == "queued"


def test_executing_before_the_timelock_is_refused_then_applies_through_the_store_with_the_vote_linked(ctx):
    from sapien.economy import parameters as store
    from sapien.governance import proposals

    author = proposer()
    proposal = proposals.create_proposal(author, rate_draft(25_000), NOW)
    with pytest.raises(proposals.GovernanceError, match="Only a passed proposal"):
        proposals.execute_proposal(proposal.id, NOW + 1000 * HOUR)  # still being voted on
    closed = _vote_and_close({author: "for"}, proposal_id=proposal.id)
    with pytest.raises(proposals.TimelockNotOver, match="waits out its timelock"):
        proposals.execute_proposal(proposal.id, closed.executable_at - timedelta(seconds=1))
    assert store.get_parameter("reward.rate.text_classification") == 10_000
    executed = proposals.execute_proposal(proposal.id, closed.executable_at)
    assert executed.status == "executed"
    assert store.get_parameter("reward.rate.text_classification") == 25_000
    history = store.parameter_history("reward.rate.text_classification")
    assert [(change.proposal_id, change.old_value, change.new_value) for change in history] == [(proposal.id, 10_000, 25_000)]
    assert executed.parameter_change_id == history[0].id
    # The author heard of both steps, once each.
    from sapien.notifications.service import recent

    assert sorted(n.kind for n in recent(author) if n.kind.startswith("proposal")) == ["proposal_applied", "proposal_passed"]
    # A second execution changes nothing more.
    assert proposals.execute_proposal(proposal.id, closed.executable_at + HOUR).status == "executed"
    assert len(store.parameter_history("reward.rate.text_classification")) == 1


def test_a_value_the_store_no_longer_accepts_cancels_the_proposal_with_why(ctx, monkeypatch):
    from sapien.economy import parameters as store
    from sapien.governance import proposals

    author = proposer()
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    closed = _vote_and_close({author: "for"}, proposal_id=proposal.id)
    # The rules of the setting tightened while the change waited (its spec's bounds moved).
    spec = store.PARAMETERS["reward.rate.text_classification"]
    monkeypatch.setitem(store.PARAMETERS, spec.name, store.ParameterSpec(spec.name, spec.kind, spec.default, spec.description,
                                                                         store.PARAMETERS["governance.quorum_bp"].validate))
    result = proposals.execute_proposal(proposal.id, closed.executable_at)
    assert result.status == "cancelled" and "could not be applied" in result.outcome_note
    assert store.parameter_history("reward.rate.text_classification") == []


def test_a_task_type_proposal_passes_then_a_moderator_marks_it_done(ctx):
    from sapien.extensions import db
    from sapien.governance import proposals
    from sapien.moderation.models import AuditLog

    author = proposer()
    moderator = make_user(role="moderator")
    draft = proposals.ProposalDraft("task_type", "Add video tagging", task_type_name="video_tagging")
    proposal = proposals.create_proposal(author, draft, NOW)
    assert _vote_and_close({author: "for"}, proposal_id=proposal.id).status == "passed"
    with pytest.raises(proposals.GovernanceError, match="Say what was done"):
        proposals.complete_task_type(moderator, proposal.id, " ", NOW)
    done = proposals.complete_task_type(moderator, proposal.id, "Built as pack type video_tagging.", NOW + 100 * HOUR)
    assert done.status == "executed" and done.outcome_note.startswith("Built")
    assert db.session.query(AuditLog).filter_by(action="governance.task_type_done").count() == 1


def test_cancelling_needs_a_reason_and_the_author_only_while_voting(ctx):
    from sapien.governance import proposals

    author = proposer()
    other = proposer()
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    with pytest.raises(proposals.NotAllowed):
        proposals.cancel_proposal(other, proposal.id, "I dislike it", NOW, moderator=False)
    with pytest.raises(proposals.GovernanceError, match="Give a reason"):
        proposals.cancel_proposal(author, proposal.id, "", NOW, moderator=False)
    cancelled = proposals.cancel_proposal(author, proposal.id, "Wrong value", NOW, moderator=False)
    assert cancelled.status == "cancelled" and cancelled.outcome_note == "Wrong value"
    with pytest.raises(proposals.GovernanceError, match="already decided"):
        proposals.cancel_proposal(other, proposal.id, "again", NOW, moderator=True)


def test_the_lists_group_proposals_by_outcome(ctx):
    from sapien.governance import proposals

    author = proposer()
    open_one = proposals.create_proposal(author, rate_draft(20_000), NOW)
    failed = proposals.create_proposal(author, rate_draft(30_000), NOW)
    proposals.close_proposal(failed.id, failed.closes_at)
    assert [p.id for p in proposals.list_proposals("open")] == [open_one.id]
    assert [p.id for p in proposals.list_proposals("failed")] == [failed.id]
    assert proposals.list_proposals("passed") == []
