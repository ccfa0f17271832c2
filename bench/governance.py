"""Governance (issue 12): tallying a vote of 100,000 voters on PostgreSQL, beside a plain SQL aggregate.

100,000 stakers with reputations are written by PostgreSQL itself (generate_series); a proposal opens
through the service (freezing every staker's voting power in one INSERT … SELECT, timed too), every one of
them votes (written in bulk), and then the tally is timed as the proposal page and the close compute it:
the tally by choice, the breakdown by power bucket, and `close_proposal` (locks, tallies, decides, queues).
The ceiling, over the same rows in the same run, is one plain `SELECT count(*), sum(power)` of the votes.
"""

from __future__ import annotations

import os
import time

from bench.harness import Figure, fresh_app
from sapien.i18n import TOKEN_UNIT

NAME = "Governance tally, PostgreSQL"
GOAL_SECONDS = 5.0
VOTERS = int(os.environ.get("BENCH_GOVERNANCE_VOTERS", 100_000))
TOKEN = TOKEN_UNIT


def seed_stakers(members: int) -> None:
    """`members` members with 0.1–5 staked tokens and reputations spread over 0–1000 (ids 1 … members)."""
    from sqlalchemy import text

    from sapien.extensions import db

    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, username_key, username_skeleton, email, password_hash, display_name, bio,"
                " role, timezone, hide_from_boards, session_version, is_banned, created_at)"
                " SELECT g, 'v' || g, 'v' || g, translate('v' || g, '01', 'ol'), 'v' || g || '@bench.example', 'x',"
                " 'Voter ' || g, '', 'member', 'UTC', false, 1, false, now() FROM generate_series(1, :members) g"
            ),
            {"members": members},
        )
        connection.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), :members)"), {"members": members})
        # The stake: the ledger balance and the economy position locking it (what voting power counts).
        connection.execute(
            text("INSERT INTO balances (user_id, currency, amount, updated_at)"
                 " SELECT g, 'stake', (1 + g % 50) * CAST(:tenth AS bigint), now() FROM generate_series(1, :members) g"),
            {"members": members, "tenth": TOKEN // 10},
        )
        connection.execute(
            text("INSERT INTO economy_stakes (user_id, amount, staked_amount, lock_months, source, status, staked_at, lock_ends_at)"
                 " SELECT g, (1 + g % 50) * CAST(:tenth AS bigint), (1 + g % 50) * CAST(:tenth AS bigint), 1, 'member', 'staked', now(),"
                 " now() + interval '30 days' FROM generate_series(1, :members) g"),
            {"members": members, "tenth": TOKEN // 10},
        )
        connection.execute(
            text("INSERT INTO reputations (user_id, score, updated_at) SELECT g, (g * 7919) % 1001, now() FROM generate_series(1, :members) g"),
            {"members": members},
        )
        connection.execute(text("ANALYZE"))


def cast_every_vote(proposal_id: int, now) -> None:
    """Every member with frozen power votes: for, against or abstain by id."""
    from sqlalchemy import text

    from sapien.extensions import db

    with db.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO governance_votes (proposal_id, user_id, choice, power, cast_at, changed_at)"
                 " SELECT proposal_id, user_id, (ARRAY['for', 'for', 'against', 'abstain'])[1 + user_id % 4], power, :now, :now"
                 " FROM governance_power_snapshots WHERE proposal_id = :proposal"),
            {"proposal": proposal_id, "now": now},
        )
        connection.execute(text("ANALYZE governance_votes"))



def run() -> list[Figure]:
    from sqlalchemy import text

    from sapien.database import unit_of_work, utcnow
    from sapien.extensions import db
    from sapien.governance import proposals, voting
    from sapien.ledger import service as ledger

    app = fresh_app()
    with app.test_request_context():
        now = utcnow()
        seed_stakers(VOTERS)
        author = 49  # a member with 5 staked tokens proposes: lift them over the thresholds (level 3, reputation 550)
        ledger.credit(author, "xp", 300, kind="bench", key="bench:author:xp", now=now)
        with unit_of_work():
            db.session.execute(text("UPDATE reputations SET score = 900 WHERE user_id = :id"), {"id": author})
        draft = proposals.ProposalDraft("parameter", "Bench", parameter_name="reward.rate.text_classification", new_value=12_000)
        started = time.perf_counter()
        proposal = proposals.create_proposal(author, draft, now)
        open_seconds = time.perf_counter() - started
        if proposal.eligible_voters != VOTERS:
            raise RuntimeError(f"{proposal.eligible_voters} powers frozen, expected {VOTERS}")
        cast_every_vote(proposal.id, now)
        db.session.expire_all()

        started = time.perf_counter()
        result = voting.tally(proposal.id)
        voting.breakdown(proposal)
        page_seconds = time.perf_counter() - started
        started = time.perf_counter()
        closed = proposals.close_proposal(proposal.id, proposal.closes_at)
        close_seconds = time.perf_counter() - started
        if result.voters != VOTERS or closed.voters != VOTERS or closed.status != "queued":
            raise RuntimeError(f"tallied {result.voters} voters, closed as {closed.status}")

        started = time.perf_counter()
        plain = db.session.execute(text("SELECT count(*), sum(power) FROM governance_votes WHERE proposal_id = :id"), {"id": proposal.id}).one()
        ceiling = time.perf_counter() - started
        if int(plain[1]) != result.cast:
            raise RuntimeError("the plain aggregate disagrees with the tally")
    ceiling_text = f"plain SELECT count(*), sum(power) of the {VOTERS:,} votes: {ceiling:.3f} s"
    return [
        Figure(NAME, f"live tally + breakdown by power of {VOTERS:,} voters (the proposal page)", round(page_seconds, 3), "s",
               ceiling=ceiling_text, goal=f"< {GOAL_SECONDS:.0f} s", met=page_seconds < GOAL_SECONDS),
        Figure(NAME, f"close: lock, tally and decide {VOTERS:,} voters", round(close_seconds, 3), "s",
               ceiling=ceiling_text, goal=f"< {GOAL_SECONDS:.0f} s", met=close_seconds < GOAL_SECONDS),
        Figure(NAME, f"open: freeze the voting power of {VOTERS:,} stakers", round(open_seconds, 3), "s", ceiling=ceiling_text),
    ]
