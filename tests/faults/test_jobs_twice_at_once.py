"""Every kind of job run twice at the same moment, by two worker processes on PostgreSQL: one effect.

The test queues two copies (distinct ids, same work) of every kind of job, pair after pair, on the
"chain" queue, and starts two burst workers that serve only that queue. Each copy waits at the
`job.start` failpoint until its twin has started too (a barrier per kind of job), so the two runs of
each kind really overlap, one in each process.
"""

from __future__ import annotations

import uuid
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

    def __init__(self, app, tmp_path, redis_conn, chain, receiver):
        self.app, self.tmp_path, self.redis, self.chain, self.receiver = app, tmp_path, redis_conn, chain, receiver

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

    def decide_items(self):
        with self.app.test_request_context():
            pack = make_pack(self.tmp_path, items=2, labels_per_item=2, max_labels_per_item=2)
            self.decided_items = [item.id for item in items_of(pack.id)]
            # Accepted, not yet weighed: the two copies below are the only runs.
            self.weighed = [
                answer(make_user(), item_id, label("pos"), decide=False).submission_id for item_id in self.decided_items for _ in range(2)
            ]
        return ()

    def check_decide_items(self):
        from sapien.labeling.models import Item, Submission
        from sapien.quality.models import ReputationEvent, VerifiedLabel

        for item_id in self.decided_items:
            assert db_get(Item, item_id).status == "retired"
            assert db_get(VerifiedLabel, item_id).answer == label("pos")
        assert count(Submission, Submission.id.in_(self.weighed), Submission.awaiting_decision.is_(True)) == 0
        # Verified (the settlement copies, running beside, may have paid them already).
        assert count(Submission, Submission.id.in_(self.weighed), Submission.reward_state.in_(("verified", "paid"))) == 4
        keys = [f"agreement:{submission_id}" for submission_id in self.weighed]
        assert count(ReputationEvent, ReputationEvent.key.in_(keys)) == 4  # each answer moved its member's reputation once

    def rotate_quests(self):
        return ()  # nothing to prepare: today's and this week's quests are missing in the fresh tables

    def check_rotate_quests(self):
        from sapien.database import utcnow
        from sapien.extensions import db
        from sapien.progression.models import Quest
        from sapien.progression.quest_catalogue import _current_rotation

        rotated = list(db.session.execute(select(Quest.catalogue_slug, Quest.rotation_key).where(Quest.catalogue_slug.is_not(None))))
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

    # --- airdrops ---------------------------------------------------------------------------------

    def _airdrop_members(self):
        from tests.airdrops.conftest import add_member

        if not hasattr(self, "airdrop_members"):
            self.airdrop_members = [add_member(f"twice-drop-{n}", points=points) for n, points in enumerate((40, 60))]
        return self.airdrop_members

    def run_snapshot(self):
        from sapien.airdrops import snapshots
        from sapien.airdrops.config import parse_config
        from tests.airdrops.conftest import NOW, base_config

        with self.app.test_request_context():
            self._airdrop_members()
            self.snapshot = snapshots.create_snapshot(parse_config(base_config(), NOW), None, NOW).id
        return (self.snapshot,)

    def check_run_snapshot(self):
        from sapien.airdrops.models import AirdropSnapshot, SnapshotEntry
        from sapien.moderation.models import AuditLog

        snapshot = db_get(AirdropSnapshot, self.snapshot)
        assert snapshot.status == "done" and snapshot.merkle_root and snapshot.eligible_count >= 2
        # One entry per member, not two: the counts the result page shows match the rows.
        assert count(SnapshotEntry, SnapshotEntry.snapshot_id == self.snapshot) == snapshot.eligible_count + snapshot.excluded_count
        for user_id, _address in self.airdrop_members:
            assert count(SnapshotEntry, SnapshotEntry.snapshot_id == self.snapshot, SnapshotEntry.user_id == user_id) == 1
        assert count(AuditLog, AuditLog.action == "airdrop.snapshot.done", AuditLog.target == f"airdrop_snapshot:{self.snapshot}") == 1

    def publish_airdrop(self):
        """A snapshot run, frozen by two moderators and asked to be published (its own job is dropped below)."""
        from sapien.airdrops import claims, freezing, snapshots
        from sapien.airdrops.config import parse_config
        from sapien.database import utcnow
        from tests.airdrops.conftest import NOW, add_member, base_config

        with self.app.test_request_context():
            self._airdrop_members()
            first, _ = add_member("twice-drop-mod1", role="moderator", wallet=None)
            second, _ = add_member("twice-drop-mod2", role="moderator", wallet=None)
            self.published = snapshots.create_snapshot(parse_config(base_config(name="Published"), NOW), first, NOW).id
            assert snapshots.run_snapshot(self.published, NOW) == "done"
            freezing.propose_freeze(self.published, first, NOW)
            freezing.approve_freeze(self.published, second, NOW)
            claims.request_publish(self.published, first, utcnow() + timedelta(days=30), utcnow())
        return (self.published,)

    def check_publish_airdrop(self):
        from sapien.airdrops.models import AirdropSnapshot
        from sapien.chain.models import ChainTransaction
        from sapien.extensions import db
        from sapien.moderation.models import AuditLog

        snapshot = db_get(AirdropSnapshot, self.published)
        assert snapshot.distributor_address and snapshot.funded_at is not None and snapshot.publish_error is None
        keys = list(db.session.scalars(select(ChainTransaction.key).where(ChainTransaction.key.like(f"airdrop:%:snapshot-{self.published}:%"))))
        assert sorted(key.rsplit(":", 1)[1] for key in keys) == ["deploy", "fund"], keys  # one distributor, funded once
        token = self.chain.contract("SapienToken")
        assert token.functions.balanceOf(snapshot.distributor_address).call() == int(snapshot.allocated_amount) > 0
        assert count(AuditLog, AuditLog.action == "airdrop.published", AuditLog.target == f"airdrop_snapshot:{self.published}") == 1

    # --- api --------------------------------------------------------------------------------------

    def _webhook_with_deliveries(self, events: int) -> tuple[int, list[int]]:
        from sapien.api.webhooks import raise_event, register_webhook
        from sapien.database import utcnow
        from tests.api.conftest import make_org

        with self.app.test_request_context():
            org = make_org()
            webhook, _secret = register_webhook(org.id, url=self.receiver.url, events=["campaign.done"], now=utcnow())
            deliveries = [
                delivery_id
                for number in range(events)
                for delivery_id in raise_event(org.id, "campaign.done", f"campaign.done:{number}", {"campaign_id": number}, now=utcnow())
            ]
        return webhook.id, deliveries

    def _received(self, delivery_id: int) -> int:
        return sum(1 for headers, _body in self.receiver.requests if headers.get("Sapien-Delivery") == str(delivery_id))

    def deliver_webhook(self):
        _webhook, (self.delivery,) = self._webhook_with_deliveries(1)
        return (self.delivery,)

    def check_deliver_webhook(self):
        from sapien.api.models import WebhookDelivery

        row = db_get(WebhookDelivery, self.delivery)
        assert (row.status, row.attempts) == ("delivered", 1)
        assert self._received(self.delivery) == 1  # the receiver got it once, not twice

    def deliver_webhooks(self):
        self.hook, self.batch_deliveries = self._webhook_with_deliveries(3)
        return (self.hook,)

    def check_deliver_webhooks(self):
        from sapien.api.models import WebhookDelivery
        from sapien.extensions import db

        rows = list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == self.hook)))
        assert sorted((row.id, row.status, row.attempts) for row in rows) == [(i, "delivered", 1) for i in self.batch_deliveries]
        assert [self._received(delivery_id) for delivery_id in self.batch_deliveries] == [1, 1, 1]

    def close_campaign_at_deadline(self):
        from sapien.api.models import CampaignTerms
        from sapien.api.webhooks import register_webhook
        from sapien.database import utcnow
        from sapien.extensions import db
        from sapien.labeling import packs
        from tests.api.conftest import make_org

        with self.app.test_request_context():
            org = make_org()
            self.deadline_hook, _secret = register_webhook(org.id, url=self.receiver.url, events=["campaign.done"], now=utcnow())
            campaign = packs.create_campaign(name="Due today", kind="enterprise", actor_id=None, now=utcnow())
            campaign.organization_id = org.id
            db.session.add(CampaignTerms(campaign_id=campaign.id, deadline=utcnow() - timedelta(minutes=1)))
            db.session.commit()
            self.deadline_campaign = campaign.id
        return (campaign.id,)

    def check_close_campaign_at_deadline(self):
        from sapien.api.models import CampaignTerms, WebhookDelivery

        assert db_get(CampaignTerms, self.deadline_campaign).done_at is not None
        assert count(WebhookDelivery, WebhookDelivery.webhook_id == self.deadline_hook.id, WebhookDelivery.event == "campaign.done") == 1

    def expire_idempotency_keys(self):
        """A key two days old and one of today."""
        from sapien.api.models import IdempotentRequest
        from sapien.database import utcnow
        from sapien.extensions import db
        from tests.api.conftest import make_org

        with self.app.test_request_context():
            org = make_org()
            for key, age in (("old", 48), ("fresh", 0)):
                db.session.add(IdempotentRequest(organization_id=org.id, key=key, fingerprint="f" * 64, status=201, content_type="application/json",
                                                 body="{}", created_at=utcnow() - timedelta(hours=age)))
            db.session.commit()
            self.keys_org = org.id
        return ()

    def check_expire_idempotency_keys(self):
        from sapien.api.models import IdempotentRequest
        from sapien.extensions import db

        assert list(db.session.scalars(select(IdempotentRequest.key).where(IdempotentRequest.organization_id == self.keys_org))) == ["fresh"]

    # --- arena ------------------------------------------------------------------------------------

    def finish_due_matches(self):
        """A match long past its deadline: one player found every planted error, the other walked away."""
        from sapien.arena import matches, prizes
        from sapien.database import utcnow
        from tests.arena.conftest import members, play, verified_pack

        with self.app.test_request_context():
            verified_pack(self.tmp_path)
            self.hunter, self.walker = members(2)
            past = utcnow() - timedelta(minutes=10)
            prizes.set_pool(prizes.PoolSettings(budget_tokens=5 * prizes.TOKEN_UNIT, prize_tokens=2 * prizes.TOKEN_UNIT, entry_fee_points=0),
                            actor_id=self.hunter, now=past)
            match = matches.start_match([self.hunter, self.walker], past)
            play(match, self.hunter, perfect=True, now=past)
            self.match = match.id
        return ()

    def check_finish_due_matches(self):
        from sapien.arena import prizes
        from sapien.arena.models import ArenaMatch
        from sapien.ledger import service as ledger
        from sapien.ledger.models import LedgerEntry

        match = db_get(ArenaMatch, self.match)
        assert (match.status, match.winner_id) == ("finished", self.hunter)
        assert count(LedgerEntry, LedgerEntry.user_id == self.hunter, LedgerEntry.kind == "arena:prize") == 1  # one prize
        assert ledger.balance(self.hunter, "token") == prizes.pool().paid_tokens > 0

    # --- chain ------------------------------------------------------------------------------------

    def settle_withdrawals(self):
        from eth_account import Account

        from sapien.chain.payouts import request_withdrawal
        from sapien.database import utcnow
        from sapien.i18n import TOKEN_UNIT
        from tests.chain.test_payouts import funded_member

        with self.app.test_request_context():
            self.withdrawers = []
            for number, amount in enumerate((3 * TOKEN_UNIT, 7 * TOKEN_UNIT + 5)):
                address = Account.create().address
                member = funded_member(f"twice-payee-{number}", address, tokens=10 * TOKEN_UNIT)
                request_withdrawal(member.id, "token", amount, uuid.uuid4().hex, utcnow())
                self.withdrawers.append((member.id, address, amount))
        return ()

    def check_settle_withdrawals(self):
        from sapien.chain.payout_models import PayoutBatch, Withdrawal
        from sapien.extensions import db
        from sapien.i18n import TOKEN_UNIT
        from sapien.ledger import service as ledger

        assert count(PayoutBatch) == 1 and count(PayoutBatch, PayoutBatch.status == "confirmed") == 1  # one batch, paid once
        token = self.chain.contract("SapienToken")
        for user_id, address, amount in self.withdrawers:
            assert list(db.session.scalars(select(Withdrawal.status).where(Withdrawal.user_id == user_id))) == ["confirmed"]
            assert token.functions.balanceOf(address).call() == amount
            assert ledger.balance(user_id, "token") == 10 * TOKEN_UNIT - amount

    def mint_ready_badges(self):
        from eth_account import Account

        from sapien.chain.wallet_models import Wallet
        from sapien.database import unit_of_work, utcnow
        from sapien.extensions import db
        from sapien.progression.awards import award_badge
        from sapien.progression.models import MintRequest

        with self.app.test_request_context():
            self.badge_holders = []
            for _ in range(2):
                user_id = make_user()
                award_badge(user_id, "first-label", utcnow())  # before the wallet: the award queues no job of its own
                address = Account.create().address
                with unit_of_work() as session:
                    session.add(Wallet(user_id=user_id, address=address, linked_at=utcnow()))
                mint_id = db.session.scalar(select(MintRequest.id).where(MintRequest.user_id == user_id))
                self.badge_holders.append((user_id, address, mint_id))
        return ()

    def check_mint_ready_badges(self):
        from sapien.chain.models import ChainTransaction
        from sapien.progression.models import MintRequest

        badge = self.chain.contract("SapienBadge")
        for _user_id, address, mint_id in self.badge_holders:
            assert db_get(MintRequest, mint_id).state == "minted"
            assert count(ChainTransaction, ChainTransaction.key == f"badge-mint:{mint_id}") == 1
            assert badge.functions.balanceOf(address).call() == 1  # one token, not two

    # --- economy ----------------------------------------------------------------------------------

    def convert_epoch(self):
        """An epoch that ended weeks ago, with two members' points unconverted."""
        from sapien.economy import conversion
        from tests.economy.helpers import give
        from tests.labeling.conftest import NOW
        from tests.labeling.conftest import make_user as make_member

        with self.app.test_request_context():
            self.converting = [make_member(f"twice-convert-{n}") for n in range(2)]
            for user_id, points in zip(self.converting, (1000, 3000), strict=True):
                give(user_id, "points", points, now=NOW)
            self.epoch = conversion.current_epoch(NOW).id
        return (self.epoch,)

    def check_convert_epoch(self):
        from sapien.economy.models import Conversion, ConversionEpoch
        from sapien.extensions import db
        from sapien.ledger import service as ledger

        assert db_get(ConversionEpoch, self.epoch).status == "closed"
        for user_id in self.converting:
            made = list(db.session.scalars(select(Conversion).where(Conversion.user_id == user_id, Conversion.epoch_id == self.epoch)))
            assert len(made) == 1 and made[0].tokens > 0  # one conversion per member
            assert ledger.balance(user_id, "token") + ledger.balance(user_id, "stake") == made[0].tokens  # paid once

    # --- trust & safety ---------------------------------------------------------------------------

    def enforce_retention(self):
        """Old and fresh signals, and a week's ban that ended yesterday."""
        from sapien.database import utcnow
        from sapien.moderation.safety.decisions import DecisionDraft, decide
        from sapien.moderation.signals import record_signal
        from tests.moderation.test_trust import member

        with self.app.test_request_context():
            self.retained = member("twice-retained")
            for age in (400, 200, 0):
                record_signal(self.retained, "login", "198.51.100.7", "", "", utcnow() - timedelta(days=age))
            self.unbanned = member("twice-banned")
            decide(member("twice-banner", "moderator"), self.unbanned, DecisionDraft("ban", "spam"), utcnow() - timedelta(days=8))
        return ()

    def check_enforce_retention(self):
        from sapien.accounts.models import User
        from sapien.moderation.models import AuditLog, TrustSignal

        assert count(TrustSignal, TrustSignal.user_id == self.retained) == 1  # the old ones deleted, the fresh one kept
        assert not db_get(User, self.unbanned).is_banned
        assert count(AuditLog, AuditLog.action == "user.unban", AuditLog.target == f"user:{self.unbanned}") == 1  # lifted once

    def scan(self):
        """Two accounts on one device: the shared-signals detector flags both."""
        from sapien.database import utcnow
        from sapien.moderation.signals import record_signal
        from tests.moderation.test_trust import member

        with self.app.test_request_context():
            self.sharing = [member(f"twice-sharing-{n}") for n in range(2)]
            for user_id in self.sharing:
                record_signal(user_id, "login", "203.0.113.9", "Firefox", "cd" * 16, utcnow())
        return ()

    def check_scan(self):
        from sapien.extensions import db
        from sapien.moderation.models import Flag

        flags = list(db.session.execute(select(Flag.user_id, Flag.kind).where(Flag.status == "open")))
        assert len(flags) == len(set(flags))  # one open flag per member and kind
        assert {(user_id, "shared_signals") for user_id in self.sharing} <= set(flags), flags


def copy_id(name: str, copy: str) -> str:
    return f"{name.rsplit('.', 1)[1].replace('_', '-')}-{copy}"


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that records every delivery it is sent."""
    from tests.api.test_webhooks import Receiver

    server = Receiver()
    yield server
    server.close()


def test_every_kind_of_job_twice_at_once_has_one_effect(app, chain, workers, redis_conn, tmp_path, receiver):
    from sapien.extensions import db
    from sapien.queue import enqueue_once, get_queue, reconcile
    from tests.jobs.test_queue import job_functions

    setups = Setups(app, tmp_path, redis_conn, chain, receiver)
    kinds = job_functions()
    args = {name: getattr(setups, name.rsplit(".", 1)[1])() for name in kinds}  # every kind has a setup and a check
    with app.app_context():
        get_queue("chain").empty()  # the jobs the setups' own actions queued there (a publish, a settlement): only the copies run
        for name in kinds:
            for copy in ("a", "b"):
                enqueue_once(name, *args[name], job_id=copy_id(name, copy), queue="chain")
    pair = [workers.start("job.start=barrier:2", burst=True, queues=["chain"]) for _ in range(2)]
    assert [worker.wait(timeout=90) for worker in pair] == [0, 0], [worker.output()[-3000:] for worker in pair]
    with app.app_context():
        finished = FinishedJobRegistry(queue=get_queue("chain")).get_job_ids()
        copies = [copy_id(name, copy) for name in kinds for copy in ("a", "b")]
        unfinished = {job_id: (job.get_status(), (job.exc_info or "")[-1500:]) if job else None
                      for job_id in copies if job_id not in finished for job in [get_queue("chain").fetch_job(job_id)]}
        assert len(finished) == 2 * len(kinds), unfinished
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
        assert failures == {}, "\n".join(f"{name}: {message}" for name, message in failures.items())
        reconcile()  # the heal step: whatever is still pending (the boards, the syncs) gets its job
    assert_invariants(app)
