"""Ballots: one per member, changeable until the close, with the power frozen at open; tallies."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.governance.conftest import HOUR, NOW, TOKEN, give, make_user, proposer, rate_draft, staker


def test_a_second_vote_changes_the_first_and_the_tally_follows(ctx):
    from sapien.extensions import db
    from sapien.governance import proposals, voting
    from sapien.governance.models import Vote

    author = proposer()
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    voting.cast_vote(author, proposal.id, "for", NOW + HOUR)
    assert voting.tally(proposal.id).power("for") == 2200
    changed = voting.cast_vote(author, proposal.id, "against", NOW + 2 * HOUR)
    assert changed.choice == "against" and changed.cast_at == NOW + HOUR and changed.changed_at == NOW + 2 * HOUR
    tally = voting.tally(proposal.id)
    assert (tally.power("for"), tally.power("against"), tally.voters) == (0, 2200, 1)
    assert db.session.query(Vote).count() == 1
    with pytest.raises(proposals.GovernanceError, match="for, against or abstain"):
        voting.cast_vote(author, proposal.id, "maybe", NOW + HOUR)


def test_voting_after_the_close_is_refused(ctx):
    from sapien.governance import proposals, voting

    author = proposer()
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    with pytest.raises(voting.VotingClosed, match="has closed"):
        voting.cast_vote(author, proposal.id, "for", proposal.closes_at)  # the period is over, the count not yet written
    proposals.close_proposal(proposal.id, proposal.closes_at)
    with pytest.raises(voting.VotingClosed):
        voting.cast_vote(author, proposal.id, "for", NOW + HOUR)  # closed: even a clock that says otherwise
    assert voting.tally(proposal.id).voters == 0


def test_power_gained_after_the_proposal_opened_does_not_count(ctx):
    from sapien.governance import proposals, voting

    author = proposer()
    latecomer = make_user()
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    give(latecomer, stake=5 * TOKEN, reputation=1000)  # stakes after the opening
    give(author, stake=5 * TOKEN, reputation=1000, tag="more")  # and the author doubles up
    with pytest.raises(proposals.NotAllowed, match="no voting power when this proposal opened"):
        voting.cast_vote(latecomer, proposal.id, "for", NOW + HOUR)
    assert voting.cast_vote(author, proposal.id, "for", NOW + HOUR).power == 2200  # the frozen power, not 12,000
    later = proposals.create_proposal(author, rate_draft(30_000), NOW + HOUR)
    assert voting.cast_vote(latecomer, later.id, "for", NOW + 2 * HOUR).power == 7500  # a new proposal sees the new stake


def test_banned_and_flagged_members_cannot_vote(ctx):
    from sapien.accounts import service as accounts
    from sapien.database import unit_of_work
    from sapien.governance import proposals, voting
    from sapien.moderation.models import Flag

    author = proposer()
    rogue = staker(TOKEN)
    flagged = staker(TOKEN)
    proposal = proposals.create_proposal(author, rate_draft(), NOW)
    accounts.ban(rogue, "vote buying")
    with pytest.raises(proposals.NotAllowed, match="Banned members cannot vote"):
        voting.cast_vote(rogue, proposal.id, "for", NOW + HOUR)
    with unit_of_work() as session:  # trust & safety's scan flagged them; no moderator has decided yet
        session.add(Flag(user_id=flagged, kind="too_fast", score=0.9, evidence={}, status="open", created_at=NOW, updated_at=NOW))
    with pytest.raises(proposals.NotAllowed, match="trust & safety"):
        voting.cast_vote(flagged, proposal.id, "for", NOW + HOUR)
    assert voting.tally(proposal.id).voters == 0


def test_the_breakdown_buckets_voters_by_their_share_of_the_power(ctx):
    from sapien.governance import proposals, voting

    author = proposer()  # 2,200
    whale = staker(8 * TOKEN, reputation=1000)  # 12,000
    minnows = [staker(TOKEN // 100) for _ in range(3)]  # 10 each
    proposal = proposals.create_proposal(author, rate_draft(), NOW)  # total 14,230
    voting.cast_vote(whale, proposal.id, "against", NOW + HOUR)
    voting.cast_vote(author, proposal.id, "for", NOW + HOUR)
    for minnow in minnows:
        voting.cast_vote(minnow, proposal.id, "for", NOW + HOUR)
    rows = {row.key: row for row in voting.breakdown(proposal)}
    assert list(rows) == ["small", "medium", "large", "whale"]
    assert (rows["small"].voters, rows["small"].powers) == (3, {"for": 30})  # 10 / 14,230 < 0.1 %
    assert rows["medium"].voters == 0 and rows["large"].voters == 0
    assert rows["whale"].powers == {"for": 2200, "against": 12_000}


@pytest.mark.postgres_only
def test_two_votes_at_once_from_one_member_make_one_vote(app):
    from sapien.extensions import db
    from sapien.governance import proposals, voting
    from sapien.governance.models import Vote

    with app.test_request_context():
        author = proposer()
        proposal_id = proposals.create_proposal(author, rate_draft(), NOW).id
        db.session.remove()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def vote(choice: str) -> None:
        with app.test_request_context():
            try:
                barrier.wait(timeout=10)
                voting.cast_vote(author, proposal_id, choice, NOW + HOUR)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=vote, args=(choice,)) for choice in ("for", "against")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    with app.app_context():
        votes = db.session.query(Vote).all()
        assert len(votes) == 1 and votes[0].choice in ("for", "against")
        assert voting.tally(proposal_id).voters == 1


@pytest.mark.postgres_only
def test_a_vote_racing_the_close_is_either_counted_or_refused(app):
    """The close locks the proposal; a vote holds a share lock: the vote commits before the count or is refused after it."""
    from sapien.extensions import db
    from sapien.governance import proposals, voting

    with app.test_request_context():
        author = proposer()
        proposal = proposals.create_proposal(author, rate_draft(), NOW)
        proposal_id, closes_at = proposal.id, proposal.closes_at
        db.session.remove()
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def vote() -> None:
        with app.test_request_context():
            barrier.wait(timeout=10)
            try:
                voting.cast_vote(author, proposal_id, "for", closes_at - timedelta(seconds=1))
                outcome["vote"] = "counted"
            except voting.VotingClosed:
                outcome["vote"] = "refused"
            finally:
                db.session.remove()

    def close() -> None:
        with app.app_context():
            barrier.wait(timeout=10)
            outcome["close"] = proposals.close_proposal(proposal_id, closes_at).status
            db.session.remove()

    threads = [threading.Thread(target=vote), threading.Thread(target=close)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with app.app_context():
        final = proposals.get_proposal(proposal_id)
        counted = voting.tally(proposal_id).voters
        assert final.voters == counted  # the written count agrees with the votes that exist
        assert (outcome["vote"], final.status) in (("counted", "queued"), ("refused", "failed"))


# A vote: the member (banned?), flagged by trust & safety?, the proposal under a share lock, the frozen power,
# the upsert, the vote read back.
VOTE_STATEMENTS = 6
# The live tally a proposal page polls every few seconds: the proposal, the tally, the breakdown.
TALLY_POLL_STATEMENTS = 3


def test_a_vote_and_a_tally_poll_cost_a_few_statements(app, ctx):
    from sapien.extensions import db
    from sapien.governance import proposals, voting
    from tests.labeling.test_submit_cost import counted_statements

    author = proposer()
    proposal_id = proposals.create_proposal(author, rate_draft(), NOW).id
    db.session.expunge_all()
    with counted_statements() as statements:
        voting.cast_vote(author, proposal_id, "for", NOW + HOUR)
    assert len(statements) <= VOTE_STATEMENTS, "\n".join(statements)
    db.session.remove()

    client = app.test_client()
    client.get(f"/governance/{proposal_id}/tally", headers={"HX-Request": "true"})  # warm: the app's first request loads more
    with counted_statements() as statements:
        response = client.get(f"/governance/{proposal_id}/tally", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "2,200" in response.get_data(as_text=True)
    assert len(statements) <= TALLY_POLL_STATEMENTS, "\n".join(statements)
