"""The governance jobs, each run twice, and the reconciler that finds their due work."""

from __future__ import annotations

from datetime import timedelta

from tests.governance.conftest import proposer, rate_draft


def test_the_close_and_execute_jobs_run_twice_and_move_the_proposal_once(ctx):
    from jobs.governance import close_proposal, execute_proposal
    from sapien.database import utcnow
    from sapien.economy import parameters as store
    from sapien.governance import pending, proposals, voting
    from sapien.queue import pending_rows

    long_ago = utcnow() - timedelta(days=30)  # opened a month ago: its period and timelock are over
    author = proposer()
    proposal = proposals.create_proposal(author, rate_draft(15_000), long_ago)
    voting.cast_vote(author, proposal.id, "for", long_ago + timedelta(hours=1))
    due = [work for source, work in pending_rows() if source == "governance"]
    assert [(work.func, work.args, work.job_id) for work in due] == [("jobs.governance.close_proposal", (proposal.id,), f"governance-close-{proposal.id}")]
    assert pending.job_id("close", proposal.id) == due[0].job_id

    assert close_proposal(proposal.id) == "queued"
    assert close_proposal(proposal.id) == "queued"
    due = [work for source, work in pending_rows() if source == "governance"]
    assert [work.job_id for work in due] == [f"governance-execute-{proposal.id}"]  # its timelock ended long ago too

    assert execute_proposal(proposal.id) == "executed"
    assert execute_proposal(proposal.id) == "executed"
    store.forget_cached_parameters()  # the jobs ran in sessions of their own: read the store afresh
    assert store.get_parameter("reward.rate.text_classification") == 15_000
    assert len(store.parameter_history("reward.rate.text_classification")) == 1
    assert [work for source, work in pending_rows() if source == "governance"] == []


def test_the_reconciler_enqueues_due_governance_work(ctx, redis_conn):
    from sapien.database import utcnow
    from sapien.governance import proposals
    from sapien.queue import is_live, reconcile

    author = proposer()
    proposal = proposals.create_proposal(author, rate_draft(), utcnow() - timedelta(days=4))
    not_due = proposals.create_proposal(author, rate_draft(30_000), utcnow())
    counts = reconcile()
    assert counts["governance"] == 1
    assert is_live(f"governance-close-{proposal.id}") and not is_live(f"governance-close-{not_due.id}")
