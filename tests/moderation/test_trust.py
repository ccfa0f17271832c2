"""Trust & safety at the service level: signals, detectors on seeded cases, the fraud model, decisions,
undoing the damage, appeals and the verdicts other areas read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from sapien.accounts import service as accounts
from sapien.extensions import db
from tests.conftest import decide_items
from tests.labeling.conftest import make_pack

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
_HASH = None


def password_hash() -> str:
    """One password hash for every member these tests make (hashing is the slow part of a sign-up)."""
    global _HASH
    _HASH = _HASH or accounts.hash_password("correct horse battery")
    return _HASH


def member(name: str, role: str = "member", when: datetime = NOW) -> int:
    user = accounts.sign_up(accounts.SignUp(username=name, email=f"{name}@example.org", password=""), now=when, role=role,
                            password_hash=password_hash())
    return user.id


@pytest.fixture
def ring(app_ctx, tmp_path):
    """A pack with honest work on some items, and the seeded ring of cheats."""
    from sapien.moderation.safety.demo_ring import seed_ring

    pack = make_pack(tmp_path, items=10, gold=5, labels_per_item=3, max_labels_per_item=3, reward_points=10, reward_xp=5)
    ring_ids = seed_ring(NOW, pack_id=pack.id, password_hash=password_hash())
    return pack, ring_ids


def test_signals_keep_no_clear_address_and_group_by_network(app_ctx):
    from sapien.moderation.models import TrustSignal
    from sapien.moderation.signals import network_of, record_signal

    ana = member("ana")
    row = record_signal(ana, "login", "198.51.100.23", "Firefox", "ab" * 16, NOW)
    assert row.network == "198.51.100.0/24" and "198.51.100.23" not in (row.ip_hash + row.network)
    assert len(row.ip_hash) == 64 and row.device_id == "ab" * 16
    assert network_of("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert network_of("not an address") == "unknown"
    # A cookie we could not have set is not a device id.
    assert record_signal(ana, "login", "198.51.100.24", "x", "<script>", NOW).device_id == ""
    assert db.session.scalar(select(func.count()).select_from(TrustSignal)) == 2


def test_a_wallet_passed_from_account_to_account_joins_them_in_a_cluster(app_ctx):
    from sapien.chain.wallet_models import SiweNonce, Wallet
    from sapien.moderation.verdicts import shared_signal_clusters

    ana, bob, cy = member("ana"), member("bob"), member("cyd")
    address = "0x" + "ab" * 20
    # Ana linked the wallet, unlinked it; Bob linked it next (only his link is current).
    db.session.add_all([
        SiweNonce(nonce="n1", user_id=ana, address=address, chain_id=1, issued_at=NOW, expires_at=NOW, used_at=NOW),
        SiweNonce(nonce="n2", user_id=bob, address=address, chain_id=1, issued_at=NOW, expires_at=NOW, used_at=NOW),
        SiweNonce(nonce="n3", user_id=cy, address=address, chain_id=1, issued_at=NOW, expires_at=NOW, used_at=None),  # never signed
        Wallet(user_id=bob, address=address, linked_at=NOW),
    ])
    db.session.commit()
    assert [(c.member_ids, c.shared) for c in shared_signal_clusters()] == [((ana, bob), ("wallet",))]
    assert shared_signal_clusters([cy]) == []


def test_retention_deletes_old_signals_and_the_job_runs_twice(app_ctx):
    from jobs.moderation import enforce_retention
    from sapien.moderation.models import TrustSignal
    from sapien.moderation.signals import record_signal

    ana = member("ana")
    record_signal(ana, "login", "198.51.100.1", "", "", datetime.now(UTC) - timedelta(days=200))
    record_signal(ana, "login", "198.51.100.1", "", "", datetime.now(UTC))
    assert enforce_retention() == 1
    assert enforce_retention() == 0
    assert db.session.scalar(select(func.count()).select_from(TrustSignal)) == 1


# --- detectors on seeded cases ------------------------------------------------------------------------

def test_every_detector_on_an_empty_or_one_member_community_finds_nothing():
    from sapien.moderation.safety import detectors as d
    from sapien.moderation.verdicts import clusters_from_edges

    assert d.fast_answers([]) == {} and d.collusion([], {}) == {} and d.rubber_stamp([]) == {}
    assert d.review_rings([]) == {} and d.signup_bursts([]) == {} and d.shared_signals(clusters_from_edges({})) == {}
    one = clusters_from_edges({"network": [(1, "10.0.0.0/24")], "device": [(1, "d")]})
    assert one == [] and d.shared_signals(one) == {}
    assert d.fast_answers([d.SpeedRow(1, "text_classification", 3, 0)]) == {}
    assert d.review_rings([(1, 1, 9)]) == {}
    assert d.signup_bursts([("10.0.0.0/24", NOW, 1)]) == {}


def test_fast_answers_use_the_task_types_floor_and_ignore_a_few_quick_ones():
    from sapien.moderation.safety import detectors as d

    found = d.fast_answers([d.SpeedRow(1, "text_classification", 20, 18), d.SpeedRow(2, "text_classification", 20, 3),
                            d.SpeedRow(3, "bounding_boxes", 4, 4)])
    assert set(found) == {1} and found[1].summary == "18/20"


def test_clusters_are_connected_components_over_shared_signals():
    from sapien.moderation.safety import detectors as d
    from sapien.moderation.verdicts import clusters_from_edges

    # 1–2 share a device, 2–3 a network: one cluster of three; 4 and 5 share only a busy network with 6.
    clusters = clusters_from_edges({
        "device": [(1, "dev-a"), (2, "dev-a"), (7, "dev-z")],
        "network": [(2, "10.0.0.0/24"), (3, "10.0.0.0/24"), (4, "10.9.9.0/24"), (5, "10.9.9.0/24"), (6, "10.9.9.0/24")],
        "wallet": [],
    })
    assert [(c.member_ids, c.shared) for c in clusters] == [((1, 2, 3), ("device", "network")), ((4, 5, 6), ("network",))]
    found = d.shared_signals(clusters)
    assert set(found) == {1, 2, 3, 4, 5, 6} and found[1].score > found[4].score and found[1].members == [2, 3]


def test_collusion_flags_pairs_agreeing_on_wrong_gold_far_beyond_chance():
    from sapien.moderation.safety import detectors as d

    wrong = [d.WrongGold(item, user, "neg") for item in range(1, 6) for user in (1, 2)]
    # Honest members are wrong now and then, on different items or with different answers.
    wrong += [d.WrongGold(1, 3, "neg"), d.WrongGold(7, 3, "x"), d.WrongGold(7, 4, "y"), d.WrongGold(9, 4, "neg"), d.WrongGold(2, 4, "pos")]
    found = d.collusion(wrong, {1: 6, 2: 6, 3: 20, 4: 20, **{n: 20 for n in range(10, 30)}})
    assert set(found) == {1, 2} and found[1].members == [2] and found[1].details["pairs"][0][1] == 5


def test_rubber_stamp_needs_near_total_acceptance_and_speed_or_failed_audits():
    from sapien.moderation.safety import detectors as d

    found = d.rubber_stamp([
        d.ReviewerRow(1, 50, 50, 2.0, 4, 3),  # stamps, fast, fails audits
        d.ReviewerRow(2, 50, 49, 40.0, 4, 0),  # accepts a lot, but careful and passes audits
        d.ReviewerRow(3, 50, 30, 1.0, 4, 4),  # rejects a fair share
        d.ReviewerRow(4, 5, 5, 1.0, 0, 0),  # too few reviews to say
    ])
    assert set(found) == {1} and found[1].score == 1.0


def test_review_rings_find_members_reviewing_each_other_in_a_circle():
    from sapien.moderation.safety import detectors as d

    found = d.review_rings([(1, 2, 3), (2, 3, 2), (3, 1, 4), (4, 1, 5), (5, 6, 1), (6, 5, 1)])
    assert set(found) == {1, 2, 3} and found[1].members == [2, 3]


def test_signup_bursts_flag_many_sign_ups_from_one_network_within_an_hour():
    from sapien.moderation.safety import detectors as d

    rows = [("10.1.1.0/24", NOW + timedelta(minutes=5 * n), n) for n in range(1, 6)]
    rows += [("10.2.2.0/24", NOW + timedelta(hours=2 * n), 10 + n) for n in range(6)]
    found = d.signup_bursts(rows)
    assert set(found) == {1, 2, 3, 4, 5}


# --- the ring, the model, decisions and the undo ------------------------------------------------------

def test_a_scan_flags_the_seeded_ring_with_scores_and_the_features_that_drove_them(ring):
    from jobs.moderation import scan
    from sapien.moderation.models import Flag
    from sapien.moderation.safety.scan import run_scan
    from sapien.moderation.verdicts import flagged_member_ids, shared_signal_clusters

    pack, ring_ids = ring
    honest = member("honest")
    report = run_scan(NOW)
    flags = db.session.scalars(select(Flag).where(Flag.status == "open")).all()
    kinds = {(f.user_id, f.kind) for f in flags}
    for user_id in ring_ids:
        for kind in ("shared_signals", "signup_burst", "collusion", "fast_answers", "model"):
            assert (user_id, kind) in kinds, (user_id, kind, report)
    model_flag = next(f for f in flags if f.kind == "model")
    assert model_flag.score >= 0.5 and model_flag.evidence["features"][0][2] > 0
    assert honest not in flagged_member_ids(NOW) and set(ring_ids) <= flagged_member_ids(NOW)
    assert shared_signal_clusters()[0].member_ids == tuple(ring_ids)
    # A second scan (the job, run twice) refreshes the open flags rather than adding more.
    assert scan() == 0 and scan() == 0
    assert db.session.scalar(select(func.count()).select_from(Flag)) == report.flags_opened
    # A dismissal closes the member's flags, and later scans leave them quiet.
    from sapien.moderation.safety.decisions import DecisionDraft, decide

    decide(member("mod", "moderator"), ring_ids[0], DecisionDraft("dismiss", "a shared office, checked"), NOW)
    assert run_scan(NOW).flags_opened == 0
    assert ring_ids[0] not in flagged_member_ids(NOW) and set(ring_ids[1:]) <= flagged_member_ids(NOW)


def test_the_model_learns_from_moderators_decisions_and_explains_its_scores():
    import numpy as np

    from sapien.moderation.safety.community import FEATURES
    from sapien.moderation.safety.model import train

    # Fast answers alone, nothing else: moderators dismissed twenty such members as honest speed-readers.
    speedy = [3.0, 0.9, 0.1, 0.0, 1.0, 0.05, 0.0, 0.0, 0.0]
    before = float(train().scores(np.asarray([speedy]))[0])
    after = float(train([(speedy, 0)] * 20).scores(np.asarray([speedy]))[0])
    assert after < before
    model = train()
    cheat = [3.0, 1.0, 0.9, 12.0, 5.0, 0.5, 0.0, 0.0, 1.0]
    drivers = model.contributions(cheat)
    assert model.scores(np.asarray([cheat]))[0] > 0.99 and drivers and all(weight > 0 for _name, _value, weight in drivers)
    assert {name for name, _value, _weight in drivers} <= set(FEATURES)


def test_a_decision_needs_a_reason_and_moderators_are_never_restricted(app_ctx):
    from sapien.moderation.safety.decisions import DecisionDraft, DecisionError, DecisionForbidden, decide

    mod, other_mod, ana = member("mod", "moderator"), member("mod2", "moderator"), member("ana")
    with pytest.raises(DecisionError) as missing:
        decide(mod, ana, DecisionDraft("warn", "   "), NOW)
    assert missing.value.field == "reason"
    with pytest.raises(DecisionForbidden):
        decide(mod, other_mod, DecisionDraft("restrict", "abuse", scope="review", days=3), NOW)
    with pytest.raises(DecisionForbidden):
        decide(mod, mod, DecisionDraft("ban", "me"), NOW)
    with pytest.raises(DecisionError):
        decide(mod, ana, DecisionDraft("restrict", "x", scope="labeling", days=0), NOW)


def test_restrictions_are_timed_and_scoped_and_enforced_at_the_entry_points(ring):
    from sapien.labeling.errors import PackLocked
    from sapien.labeling.leases import lease_next_item
    from sapien.moderation.safety.decisions import DecisionDraft, decide
    from sapien.moderation.verdicts import is_restricted
    from sapien.quality.errors import NotAReviewer
    from sapien.quality.reviews import claim_next_review

    pack, _ring = ring
    mod, ana, rev = member("mod", "moderator"), member("ana"), member("rev", "reviewer")
    decide(mod, ana, DecisionDraft("restrict", "copying answers", scope="pack", pack_id=pack.id, days=2), NOW)
    decide(mod, rev, DecisionDraft("restrict", "stamping", scope="review", days=1), NOW)
    with pytest.raises(PackLocked, match="copying answers"):
        lease_next_item(ana, pack.id, NOW + timedelta(hours=1))
    assert lease_next_item(ana, pack.id, NOW + timedelta(days=3)) is not None  # the restriction ended
    assert is_restricted(ana, "arena", NOW) is None and is_restricted(ana, "labeling", NOW, pack_id=pack.id) is not None
    with pytest.raises(NotAReviewer, match="stamping"):
        claim_next_review(rev, NOW + timedelta(hours=1))
    assert lease_next_item(rev, pack.id, NOW + timedelta(hours=1)) is not None  # labeling is still open to them


def test_bans_escalate_for_repeat_offences_and_the_sweep_lifts_an_ended_one(app_ctx):
    from sapien.moderation.safety.decisions import DecisionDraft, decide, lift_expired_bans

    mod, ana = member("mod", "moderator"), member("ana")
    first = decide(mod, ana, DecisionDraft("ban", "spam"), NOW)
    assert first.ends_at - first.starts_at == timedelta(days=7) and accounts.get_user(ana).is_banned
    assert lift_expired_bans(NOW + timedelta(days=8)) == 1 and not accounts.get_user(ana).is_banned
    second = decide(mod, ana, DecisionDraft("ban", "spam again"), NOW + timedelta(days=9))
    assert second.ends_at - second.starts_at == timedelta(days=30)
    lift_expired_bans(NOW + timedelta(days=40))
    third = decide(mod, ana, DecisionDraft("ban", "and again"), NOW + timedelta(days=41))
    assert third.ends_at is None
    assert lift_expired_bans(NOW + timedelta(days=4000)) == 0 and accounts.get_user(ana).is_banned


def test_undoing_the_damage_reverses_pay_recomputes_labels_requeues_and_twice_changes_nothing(ring):
    from sapien.labeling.leases import lease_item
    from sapien.labeling.models import Item, Submission
    from sapien.labeling.submissions import submit_answer
    from sapien.ledger import service as ledger
    from sapien.ledger.models import LedgerEntry
    from sapien.moderation.safety.decisions import DecisionDraft, decide_many
    from sapien.moderation.safety.reversal import undo_damage
    from sapien.quality.models import VerifiedLabel

    pack, ring_ids = ring
    earned = {uid: ledger.balance(uid, "points") for uid in ring_ids}
    assert sum(earned.values()) > 0
    labelled = set(db.session.scalars(select(VerifiedLabel.item_id).where(VerifiedLabel.pack_id == pack.id)))
    assert labelled, "the ring's agreement verified its own labels"
    mod = member("mod", "moderator")
    decisions = decide_many(mod, ring_ids, DecisionDraft("ban", "a ring of cheats"), NOW)
    summaries = [undo_damage(d.id, mod, NOW) for d in decisions]
    assert sum(s["points_reversed"] for s in summaries) == sum(earned.values())
    assert all(ledger.balance(uid, "points") == 0 == ledger.sum_of_entries(uid, "points") for uid in ring_ids)
    # The ring's labels are withdrawn and their items open again for honest members.
    assert not set(db.session.scalars(select(VerifiedLabel.item_id).where(VerifiedLabel.item_id.in_(labelled))))
    items = db.session.scalars(select(Item).where(Item.id.in_(labelled))).all()
    assert all(item.status == "open" and item.slots_taken == 0 for item in items)
    assert sum(s["items_requeued"] for s in summaries) == len(labelled)
    entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    assert [undo_damage(d.id, mod, NOW) for d in decisions] == summaries  # twice: nothing changes
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
    assert not db.session.scalar(select(func.count()).select_from(Submission).where(Submission.user_id.in_(ring_ids), Submission.status != "rejected"))
    # An honest member can label a re-queued item now.
    honest = member("honest")
    lease = lease_item(honest, next(iter(labelled)), NOW + timedelta(minutes=1))
    assert submit_answer(honest, lease.id, {"labels": ["pos"]}, now=NOW + timedelta(minutes=1)).status == "accepted"


def test_a_label_backed_by_honest_answers_is_recomputed_without_the_cheats(app_ctx, tmp_path):
    from sapien.labeling.leases import lease_item
    from sapien.labeling.models import Item, Submission
    from sapien.labeling.submissions import submit_answer
    from sapien.moderation.safety.decisions import DecisionDraft, decide
    from sapien.moderation.safety.reversal import undo_damage
    from sapien.quality.models import VerifiedLabel

    pack = make_pack(tmp_path, items=1, labels_per_item=3, max_labels_per_item=3)
    item_id = db.session.scalar(select(Item.id).where(Item.pack_id == pack.id))
    a, b, cheat, mod = member("alice"), member("bruno"), member("cheat"), member("mod", "moderator")
    for user_id in (a, b, cheat):
        submit_answer(user_id, lease_item(user_id, item_id, NOW).id, {"labels": ["pos"]}, now=NOW, time_spent_ms=5000)
    decide_items(NOW)
    label = db.session.get(VerifiedLabel, item_id)
    assert label is not None and cheat in label.contributor_ids
    undo_damage(decide(mod, cheat, DecisionDraft("restrict", "bot", scope="labeling", days=30), NOW).id, mod, NOW)
    db.session.expire_all()
    label = db.session.get(VerifiedLabel, item_id)
    assert label is not None and sorted(label.contributor_ids) == sorted([a, b]) and label.answer == {"labels": ["pos"]}
    assert db.session.get(Submission, db.session.scalar(select(Submission.id).where(Submission.user_id == cheat))).status == "rejected"


def test_a_rubber_stamp_reviewers_reviews_are_reopened(app_ctx, tmp_path):
    from sapien.labeling.leases import lease_item
    from sapien.labeling.models import Item
    from sapien.labeling.submissions import submit_answer
    from sapien.moderation.safety.decisions import DecisionDraft, decide
    from sapien.moderation.safety.reversal import undo_damage
    from sapien.quality.models import Review
    from sapien.quality.reviews import claim_review, decide_review

    pack = make_pack(tmp_path, items=2, labels_per_item=1, max_labels_per_item=1, review_rate_percent=100)
    stamper, author, mod = member("stamper", "reviewer"), member("author"), member("mod", "moderator")
    for item_id in db.session.scalars(select(Item.id).where(Item.pack_id == pack.id)).all():
        submit_answer(author, lease_item(author, item_id, NOW).id, {"labels": ["pos"]}, now=NOW)
    reviews = db.session.scalars(select(Review).where(Review.author_id == author)).all()
    assert len(reviews) == 2
    for review in reviews:
        claim_review(review.id, stamper, NOW)
        decide_review(review.id, stamper, outcome="accepted", now=NOW + timedelta(seconds=1))
    from sapien.moderation.safety.community import review_edges, reviewer_rows

    row = next(r for r in reviewer_rows() if r.reviewer_id == stamper)
    assert (row.reviews, row.accepted) == (2, 2) and review_edges() == [(stamper, author, 2)]
    summary = undo_damage(decide(mod, stamper, DecisionDraft("restrict", "stamps", scope="review", days=30), NOW).id, mod, NOW)
    assert summary["reviews_reopened"] == 2
    db.session.expire_all()
    assert {(r.status, r.reviewer_id) for r in db.session.scalars(select(Review).where(Review.author_id == author))} == {("queued", None)}


def test_an_appeal_is_heard_once_and_by_a_second_moderator(app_ctx):
    from sapien.moderation.safety.appeals import AppealError, appeal_ban, decide_appeal, open_appeals
    from sapien.moderation.safety.decisions import DecisionDraft, decide

    first, second, ana = member("mod", "moderator"), member("mod2", "moderator"), member("ana")
    decision = decide(first, ana, DecisionDraft("ban", "spam"), NOW)
    with pytest.raises(AppealError):
        appeal_ban("ana", "wrong password", "let me back", NOW)
    row = appeal_ban("ana", "correct horse battery", "It was my brother.", NOW)
    with pytest.raises(AppealError, match="already appealed"):
        appeal_ban("ana", "correct horse battery", "Again", NOW)
    assert open_appeals(first) == [] and [a.id for a, _d, _u in open_appeals(second)] == [row.id]
    with pytest.raises(AppealError, match="second moderator"):
        decide_appeal(first, row.id, True, "ok", NOW)
    decide_appeal(second, row.id, True, "Believable; one chance.", NOW)
    assert not accounts.get_user(ana).is_banned
    from sapien.moderation.verdicts import is_restricted

    assert is_restricted(ana, "labeling", NOW) is None and decision.id


@pytest.mark.postgres_only
def test_two_moderators_undoing_one_decision_at_once_reverse_it_once(app, tmp_path):
    import threading

    from sapien.ledger.models import LedgerEntry
    from sapien.moderation.safety.decisions import DecisionDraft, decide
    from sapien.moderation.safety.demo_ring import seed_ring
    from sapien.moderation.safety.reversal import undo_damage

    with app.test_request_context():
        pack = make_pack(tmp_path, items=6, gold=5, labels_per_item=3, max_labels_per_item=3)
        ring_ids = seed_ring(NOW, pack_id=pack.id, password_hash="x")
        mods = [member("moda", "moderator"), member("modb", "moderator")]
        decision_id = decide(mods[0], ring_ids[0], DecisionDraft("ban", "ring"), NOW).id
        before = db.session.scalar(select(func.count()).select_from(LedgerEntry))
        db.session.remove()
    barrier, results, errors = threading.Barrier(2), [], []

    def undo(moderator_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(undo_damage(decision_id, moderator_id, NOW))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=undo, args=(mod,)) for mod in mods]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and len(results) == 2 and results[0] == results[1]
    with app.app_context():
        from sapien.labeling.models import Submission
        from sapien.moderation.models import AuditLog

        # One debit per paid answer and currency (points and XP): the second undo added none.
        paid = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.user_id == ring_ids[0], Submission.reversed_at.is_not(None)))
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) - before == 2 * paid > 0

        assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "moderation.undo")) == 1
        assert results[0]["points_reversed"] > 0
        db.session.remove()


def test_undoing_takes_back_the_quest_reward_and_badges_fraud_earned_and_keeps_the_honest_reward(app, tmp_path):
    from sapien.ledger import service as ledger
    from sapien.ledger.models import LedgerEntry
    from sapien.moderation.safety.decisions import DecisionDraft, decide
    from sapien.moderation.safety.reversal import undo_damage
    from sapien.progression.models import BadgeAward
    from tests.moderation.rewards import FRAUD_QUEST_POINTS, FRAUD_QUEST_XP, HONEST_QUEST_POINTS, earn_indirect_rewards

    with app.test_request_context():
        pack = make_pack(tmp_path, items=4, labels_per_item=1, max_labels_per_item=1, reward_points=10, reward_xp=5)
        cheat, founder, mod = member("cheat"), member("founder"), member("mod", "moderator")
        earn_indirect_rewards(app, cheat, founder, pack.id, NOW)
        held = set(db.session.scalars(select(BadgeAward.badge_slug).where(BadgeAward.user_id == cheat)))
        assert {"founding-member", "first-label", "quester"} <= held
        assert ledger.balance(cheat, "points") == HONEST_QUEST_POINTS + FRAUD_QUEST_POINTS + 2 * 10

        decision = decide(mod, cheat, DecisionDraft("ban", "bot answers"), NOW)
        summary = undo_damage(decision.id, mod, NOW)
        # The answers' pay and the quest their answers completed are taken back; the quest joining a guild
        # earned two days before the fraud's first answer stays, and so does the badge it brought.
        assert summary["points_reversed"] == 20 and summary["reward_points_reversed"] == FRAUD_QUEST_POINTS
        assert [(r["kind"], r["currency"], r["amount"]) for r in summary["rewards_reversed"]] == [
            ("quest_reward", "points", FRAUD_QUEST_POINTS), ("quest_reward", "xp", FRAUD_QUEST_XP)]
        assert ledger.balance(cheat, "points") == HONEST_QUEST_POINTS == ledger.sum_of_entries(cheat, "points")
        assert ledger.balance(cheat, "xp") == ledger.sum_of_entries(cheat, "xp") == 0
        revoked = {award.badge_slug: award.revoked_at is not None for award in db.session.scalars(select(BadgeAward).where(BadgeAward.user_id == cheat))}
        assert revoked["founding-member"] and revoked["first-label"] and not revoked["quester"]
        assert sorted(summary["badges_revoked"]) == ["first-label", "founding-member"]
        # Twice: the same summary, not one entry more; every balance still the sum of its entries.
        entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
        assert undo_damage(decision.id, mod, NOW) == summary
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
        assert ledger.find_mismatched_balances() == []


def test_a_reward_already_spent_is_taken_back_as_far_as_the_balance_goes_never_below_zero(app, tmp_path):
    from sapien.ledger import service as ledger
    from sapien.moderation.safety.decisions import DecisionDraft, decide
    from sapien.moderation.safety.reversal import undo_damage
    from sapien.progression.streaks import buy_streak_freeze
    from tests.moderation.rewards import FRAUD_QUEST_POINTS, FRAUD_QUEST_XP, earn_indirect_rewards

    app.config["STREAK_FREEZE_PRICE_POINTS"] = 60
    with app.test_request_context():
        pack = make_pack(tmp_path, items=2, labels_per_item=1, max_labels_per_item=1, reward_points=10, reward_xp=5)
        cheat, founder, mod = member("cheat"), member("founder"), member("mod", "moderator")
        earn_indirect_rewards(app, cheat, founder, pack.id, NOW)
        buy_streak_freeze(cheat, NOW - timedelta(hours=1))  # 90 points earned, 60 spent: 30 left
        summary = undo_damage(decide(mod, cheat, DecisionDraft("ban", "bot answers"), NOW).id, mod, NOW)
        # The answers' pay goes first (20), the quest's 50 points find 10 left: 40 short, reported.
        assert [(r["kind"], r["currency"], r["amount"], r["short"]) for r in summary["rewards_reversed"]] == [
            ("quest_reward", "points", 10, FRAUD_QUEST_POINTS - 10), ("quest_reward", "xp", FRAUD_QUEST_XP, 0)]
        assert ledger.balance(cheat, "points") == 0 == ledger.sum_of_entries(cheat, "points")
        assert ledger.find_mismatched_balances() == []
