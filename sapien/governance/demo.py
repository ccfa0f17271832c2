"""Demo governance: stakers, one proposal open for voting, one applied and one failed, so `make run` shows
every state of the governance pages. Called by `sapien.demo` inside its unit of work."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sapien.economy import staking
from sapien.governance import proposals, voting
from sapien.i18n import TOKEN_UNIT
from sapien.ledger import service as ledger

TOKEN = TOKEN_UNIT


def _stake(user_id: int, tokens_tenths: int, now: datetime) -> None:
    amount = tokens_tenths * TOKEN // 10
    ledger.credit(user_id, "token", amount, kind="demo_history", key=f"demo:governance-tokens:{user_id}", now=now)
    staking.stake(user_id, amount, 1, now=now)


def seed_demo_proposals(rng: random.Random, proposer_id: int, member_ids: list[int], now: datetime) -> None:
    """`proposer_id` (already level 3 or more) stakes and proposes; some members stake and vote."""
    from sapien.database import dialect_insert
    from sapien.extensions import db
    from sapien.quality.models import Reputation

    long_ago = now - timedelta(days=12)
    voters = member_ids[:24]
    db.session.execute(dialect_insert(Reputation).values(user_id=proposer_id, score=720, updated_at=long_ago)
                       .on_conflict_do_update(index_elements=[Reputation.user_id], set_={"score": 720}))
    _stake(proposer_id, 40, long_ago)
    for user_id in voters:
        _stake(user_id, rng.randint(2, 30), long_ago)

    def run(draft: proposals.ProposalDraft, opened: datetime, choices: list[str]) -> int:
        proposal = proposals.create_proposal(proposer_id, draft, opened)
        voting.cast_vote(proposer_id, proposal.id, choices[0], opened + timedelta(hours=1))
        for user_id in voters:
            if rng.random() < 0.7:
                voting.cast_vote(user_id, proposal.id, rng.choice(choices), opened + timedelta(hours=rng.randint(1, 60)))
        return proposal.id

    applied = run(proposals.ProposalDraft("parameter", "A longer voting period", "Three days is short for members in every time zone.",
                                          parameter_name="governance.voting_period_hours", new_value=96), long_ago, ["for", "for", "abstain"])
    closed = proposals.close_proposal(applied, long_ago + timedelta(hours=72))
    proposals.execute_proposal(applied, closed.executable_at)
    failed = run(proposals.ProposalDraft("parameter", "Halve the auto-stake share", parameter_name="conversion.auto_stake_bp", new_value=1000),
                 long_ago + timedelta(hours=2), ["against", "against", "for"])
    proposals.close_proposal(failed, long_ago + timedelta(hours=74))
    run(proposals.ProposalDraft("parameter", "Pay audio transcription 25 % more", "Transcribing takes three times as long as classifying.",
                                parameter_name="reward.rate.audio_transcription", new_value=12_500), now - timedelta(hours=6), ["for", "against", "for"])
