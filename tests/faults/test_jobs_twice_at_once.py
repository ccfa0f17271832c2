"""Every kind of job run twice at the same moment, by two worker processes on PostgreSQL: one effect.

The test queues two copies (distinct ids, same work) of every kind of job, pair after pair, on the
"chain" queue, and starts two burst workers that serve only that queue. Each copy waits at the
`job.start` failpoint until its twin has started too (a barrier per kind of job), so the two runs of
each kind really overlap, one in each process.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from rq.registry import FinishedJobRegistry
from sqlalchemy import func, select

from tests.chain.conftest import OTHER_ADDRESS, signed_message, site
from tests.faults.conftest import assert_invariants
from tests.faults.scenarios import (
    aggregation_requested,
    answered_pack,
    label_methods,
    mark_aggregation_requested,
    member_behind_on_levels,
    progression_of,
)
from tests.quality.conftest import answer, items_of, label, make_pack, make_user

pytestmark = [pytest.mark.faults, pytest.mark.postgres_only]


def count(model, *where) -> int:
    from sapien.extensions import db

    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def db_get(model, key):
    from sapien.extensions import db

    return db.session.get(model, key)


class Setups:
    """Data for each kind of job, made before the runs; each check reads the one effect back."""

    def __init__(self, app, tmp_path, redis_conn, chain):
        self.app, self.tmp_path, self.redis, self.chain = app, tmp_path, redis_conn, chain

    def mint_badge(self):
        from eth_account import Account

        from sapien.chain import wallets
        from sapien.database import utcnow
        from sapien.extensions import db
        from sapien.progression.awards import award_badge
        from sapien.progression.models import MintRequest

        with self.app.test_request_context():
            self.minter = make_user()
            # Awarded before the wallet is linked, so the award queues no mint job of its own (the two
            # copies below are the only runs).
            award_badge(self.minter, "first-label", utcnow())
            self.mint_id = db.session.scalar(select(MintRequest.id).where(MintRequest.user_id == self.minter))
            # Linked through the wallets area's real path: the workers' `events.wallet_of` reads this row.
            self.mint_wallet = Account.create()
            text, signature = signed_message(self.minter, self.mint_wallet, now=utcnow())
            wallets.link_wallet(self.minter, text, signature, site(), utcnow())
        return (self.mint_id,)

    def check_mint_badge(self):
        from sapien.chain.contracts import badge_token_id
        from sapien.chain.models import ChainTransaction
        from sapien.extensions import db
        from sapien.progression.models import MintRequest

        request = db.session.get(MintRequest, self.mint_id)
        assert request.state == "minted" and request.wallet_address == self.mint_wallet.address
        sent = list(db.session.scalars(select(ChainTransaction).where(ChainTransaction.key == f"badge-mint:{self.mint_id}")))
        assert [(row.id, row.status) for row in sent] == [(request.tx_id, "confirmed")]
        badge = self.chain.contract("SapienBadge")
        assert badge.functions.balanceOf(self.mint_wallet.address).call() == 1  # one token, not two
        assert badge.functions.ownerOf(badge_token_id(self.minter, "first-label")).call() == self.mint_wallet.address
        assert self.chain.w3.eth.get_transaction_receipt(sent[0].tx_hash)["status"] == 1

    def send_transaction(self):
        from sapien.chain.contracts import call_data
        from sapien.chain.outbox import queue_transaction
        from sapien.database import utcnow

        token = self.chain.contract("SapienToken")
        self.tokens_before = token.functions.balanceOf(OTHER_ADDRESS).call()
        with self.app.app_context():
            self.sent_tx = queue_transaction(
                key="test:twice:token-mint", kind="token_mint", chain_id=self.chain.chain_id, to=token.address,
                data=call_data("SapienToken", "mint", OTHER_ADDRESS, 5), now=utcnow(),
            )
        return (self.sent_tx,)

    def check_send_transaction(self):
        from sapien.chain.models import ChainTransaction
        from sapien.extensions import db

        row = db.session.get(ChainTransaction, self.sent_tx)
        assert row.status == "confirmed" and row.tx_hash and row.attempts >= 1
        assert self.chain.w3.eth.get_transaction_receipt(row.tx_hash)["status"] == 1
        token = self.chain.contract("SapienToken")
        assert token.functions.balanceOf(OTHER_ADDRESS).call() == self.tokens_before + 5  # minted once

    def aggregate_pack(self):
        self.agg_pack = answered_pack(self.app, self.tmp_path)
        mark_aggregation_requested(self.app, self.agg_pack)
        return (self.agg_pack,)

    def check_aggregate_pack(self):
        assert label_methods(self.app, self.agg_pack) == ["calibrated", "calibrated"] and not aggregation_requested(self.app, self.agg_pack)

    def decay_reputation(self):
        from sapien.database import utcnow
        from sapien.extensions import db
        from sapien.quality.models import Reputation

        with self.app.test_request_context():
            self.decayed = [make_user() for _ in range(3)]
            for user_id in self.decayed:
                db.session.add(Reputation(user_id=user_id, score=800, updated_at=utcnow() - timedelta(days=60)))
            db.session.commit()
        return ()

    def check_decay_reputation(self):
        from sapien.extensions import db
        from sapien.quality.models import Reputation, ReputationEvent

        for user_id in self.decayed:
            events = list(db.session.scalars(select(ReputationEvent).where(ReputationEvent.user_id == user_id)))
            assert len(events) == 1 and events[0].reason == "decay" and events[0].delta < 0
            assert db.session.get(Reputation, user_id).score == 800 + events[0].delta

    def escalate_reviews(self):
        from sapien.database import utcnow

        with self.app.test_request_context():
            pack = make_pack(self.tmp_path, items=2, review_rate_percent=100)
            self.escalating_moderator = make_user(role="moderator")
            author = make_user()
            for item in items_of(pack.id):
                answer(author, item.id, label("pos"), now=utcnow() - timedelta(minutes=30))
            self.escalating_pack = pack.id
        return ()

    def check_escalate_reviews(self):
        from sapien.notifications.models import Notification
        from sapien.quality.models import Review

        assert count(Review, Review.pack_id == self.escalating_pack, Review.escalated_at.is_not(None)) == 2
        notes = count(Notification, Notification.user_id == self.escalating_moderator, Notification.kind == "reviews_escalated")
        assert notes == 1  # both runs swept at once: one batch, one notification

    def settle_rewards(self):
        from sapien.extensions import db
        from sapien.labeling.models import Submission

        with self.app.test_request_context():
            pack = make_pack(self.tmp_path, items=2, labels_per_item=2, max_labels_per_item=2)
            self.settled_members = [make_user() for _ in range(2)]
            # Two agreeing voices per item verify both answers; nothing is paid until the job runs.
            self.settled = [
                answer(member, item.id, label("pos")).submission_id
                for item in items_of(pack.id) for member in self.settled_members
            ]
            states = set(db.session.scalars(select(Submission.reward_state).where(Submission.id.in_(self.settled))))
            assert states == {"verified"}, states
        return ()

    def check_settle_rewards(self):
        from sapien.extensions import db
        from sapien.labeling.models import Submission
        from sapien.ledger.models import Balance, LedgerEntry

        submissions = list(db.session.scalars(select(Submission).where(Submission.id.in_(self.settled))))
        assert {row.reward_state for row in submissions} == {"paid"} and all(row.paid_points > 0 for row in submissions)
        for row in submissions:
            entries = list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.idempotency_key == f"submission:{row.id}:points")))
            assert [(entry.user_id, entry.amount) for entry in entries] == [(row.user_id, row.paid_points)]
        for member in self.settled_members:
            paid = sum(row.paid_points for row in submissions if row.user_id == member)
            entries = db.session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.user_id == member, LedgerEntry.currency == "points")
            )
            balance = db.session.get(Balance, (member, "points"))
            assert balance.amount == entries == paid, (member, balance.amount, entries, paid)

    def rotate_quests(self):
        return ()  # nothing to prepare: today's and this week's quests are missing in the fresh tables

    def check_rotate_quests(self):
        from sapien.database import utcnow
        from sapien.extensions import db
        from sapien.progression.models import Quest
        from sapien.progression.quest_catalogue import _current_rotation

        rotated = list(db.session.execute(select(Quest.catalogue_slug, Quest.rotation_key).where(Quest.catalogue_slug.is_not(None))).tuples())
        wanted = [(template.slug, key) for template, key in _current_rotation(utcnow())]
        assert sorted(rotated) == sorted(wanted), rotated  # each once (the unique key), none missing

    def sync_member_progress(self):
        self.behind = member_behind_on_levels(self.app)
        return (self.behind,)

    def check_sync_member_progress(self):
        after = progression_of(self.app, self.behind)
        assert after["levels"] == [2, 3, 4, 5] and after["level_notes"] == 1
        assert after["badges"] and after["mints"] == len(after["badges"])

    def expire_leases(self):
        from sapien.database import utcnow
        from sapien.labeling import leases

        with self.app.test_request_context():
            pack = make_pack(self.tmp_path, items=1, labels_per_item=3, max_labels_per_item=3)
            self.leased_item = items_of(pack.id)[0].id
            now = utcnow()
            for when in (now - timedelta(hours=2), now - timedelta(hours=1), now):
                leases.lease_item(make_user(), self.leased_item, when)
        return ()

    def check_expire_leases(self):
        from sapien.extensions import db
        from sapien.labeling.models import Item, Lease

        assert count(Lease, Lease.item_id == self.leased_item, Lease.status == "expired") == 2
        assert db.session.get(Item, self.leased_item).slots_taken == 1  # two slots back, not four (nor clamped to 0)

    def close_proposal(self):
        """A proposal whose voting period ended a day ago, with one vote for."""
        from sapien.database import utcnow
        from sapien.governance import proposals, voting
        from tests.governance.conftest import proposer

        opened = utcnow() - timedelta(days=4)
        with self.app.test_request_context():
            self.closing_author = proposer()
            draft = proposals.ProposalDraft("parameter", "Close me", parameter_name="reward.rate.text_cleaning", new_value=12_000)
            self.closing = proposals.create_proposal(self.closing_author, draft, opened).id
            voting.cast_vote(self.closing_author, self.closing, "for", opened + timedelta(hours=1))
        return (self.closing,)

    def check_close_proposal(self):
        from sapien.governance.models import Proposal
        from sapien.notifications.models import Notification

        proposal = db_get(Proposal, self.closing)
        assert (proposal.status, proposal.voters, proposal.power_for) == ("queued", 1, 2200)
        assert count(Notification, Notification.user_id == self.closing_author, Notification.kind == "proposal_passed") == 1

    def execute_proposal(self):
        """A passed proposal whose timelock ended a day ago."""
        from sapien.database import utcnow
        from sapien.governance import proposals, voting
        from tests.governance.conftest import proposer

        opened = utcnow() - timedelta(days=6)
        with self.app.test_request_context():
            author = proposer()
            draft = proposals.ProposalDraft("parameter", "Apply me", parameter_name="reward.rate.audio_transcription", new_value=15_000)
            self.executing = proposals.create_proposal(author, draft, opened).id
            voting.cast_vote(author, self.executing, "for", opened + timedelta(hours=1))
            proposals.close_proposal(self.executing, opened + timedelta(hours=72))
        return (self.executing,)

    def check_execute_proposal(self):
        from sapien.economy.models import ParameterChange
        from sapien.governance.models import Proposal

        assert db_get(Proposal, self.executing).status == "executed"
        assert count(ParameterChange, ParameterChange.proposal_id == self.executing) == 1

    def rebuild_boards(self):
        from sapien.database import utcnow
        from sapien.ledger import service as ledger

        with self.app.test_request_context():
            self.ranked = [make_user() for _ in range(3)]
            for number, user_id in enumerate(self.ranked):
                ledger.credit(user_id, "xp", 10_000 * (number + 1), kind="test", key=f"test:xp:{user_id}", now=utcnow())
        self.redis.flushdb()  # the boards are lost (the queued copies are enqueued after this)
        return ()

    def check_rebuild_boards(self):
        from sapien.database import utcnow
        from sapien.leaderboards.boards import Board, member_of
        from sapien.leaderboards.reading import read_key
        from sapien.ledger.models import Balance

        key, _ = read_key(Board("xp", "all"), utcnow())
        assert self.redis.zcard(key) == count(Balance, Balance.currency == "xp", Balance.amount > 0)
        assert [self.redis.zrevrank(key, member_of(user_id)) for user_id in self.ranked] == [2, 1, 0]

    def reconcile_pending_work(self):
        self.requested = [answered_pack(self.app, self.tmp_path, items=1) for _ in range(2)]
        for pack_id in self.requested:
            mark_aggregation_requested(self.app, pack_id)
        return ()

    def check_reconcile_pending_work(self):
        from sapien.queue import get_queue

        queued = get_queue().get_job_ids()
        assert all(queued.count(f"quality-aggregate-{pack_id}") == 1 for pack_id in self.requested), queued


def test_every_kind_of_job_twice_at_once_has_one_effect(app, chain, workers, redis_conn, tmp_path):
    from sapien.extensions import db
    from sapien.queue import enqueue_once, get_queue, reconcile
    from tests.jobs.test_queue import job_functions

    setups = Setups(app, tmp_path, redis_conn, chain)
    kinds = job_functions()
    args = {name: getattr(setups, name.rsplit(".", 1)[1])() for name in kinds}  # every kind has a setup and a check
    with app.app_context():
        for name in kinds:
            for copy in ("a", "b"):
                enqueue_once(name, *args[name], job_id=f"{name.rsplit('.', 1)[1].replace('_', '-')}-{copy}", queue="chain")
    pair = [workers.start("job.start=barrier:2", burst=True, queues=["chain"]) for _ in range(2)]
    assert [worker.wait(timeout=90) for worker in pair] == [0, 0], [worker.output()[-3000:] for worker in pair]
    with app.app_context():
        finished = FinishedJobRegistry(queue=get_queue("chain")).get_job_ids()
        assert len(finished) == 2 * len(kinds), finished
        # Both copies of every kind were inside at once, one in each process.
        reached = [entry.decode().split() for entry in Redis.from_url(app.config["REDIS_URL"]).lrange("sapien:failpoints:reached", 0, -1)]
        assert len(reached) == 2 * len(kinds) and {pid for _, pid in reached} == {str(worker.pid) for worker in pair}
        for name in kinds:
            barrier = redis_conn.get(f"sapien:failpoints:barrier:job.start:{name}")
            assert barrier == b"2", name
        db.session.remove()
        failures = {}
        for name in kinds:
            try:
                getattr(setups, "check_" + name.rsplit(".", 1)[1])()
            except AssertionError as error:
                failures[name] = str(error)[:500]
        assert failures == {}
        reconcile()  # the heal step: whatever is still pending (the boards, the syncs) gets its job
    assert_invariants(app)
