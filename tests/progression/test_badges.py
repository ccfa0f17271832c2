from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sapien import events
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.moderation.models import AuditLog
from sapien.progression import awards, levels, quest_cards, quests
from sapien.progression import errors as progression_errors
from sapien.progression.badges import BADGES, CATALOGUE, badge_svg
from sapien.progression.models import BadgeAward, MintRequest
from tests.progression.helpers import NOW, accept, days, make_user


def test_catalogue_is_declarative_and_well_formed(ctx):
    assert len({b.slug for b in CATALOGUE}) == len(CATALOGUE)
    assert {b.tier for b in CATALOGUE} == {"bronze", "silver", "gold"}
    assert BADGES["community-hero"].manual_only and not BADGES["first-label"].manual_only
    svg = badge_svg(BADGES["first-label"])
    assert svg.startswith("<svg") and "First label" in svg and "#e3a46f" in svg
    assert "#ffe48a" in badge_svg(BADGES["first-label"], "gold")


def test_rules_award_once_with_a_pending_mint_request(ctx):
    user_id = make_user("earner")
    heard = []
    with events.badge_awarded.connected_to(lambda _s, **kw: heard.append(kw["badge_slug"])):
        accept(user_id, NOW)
        accept(user_id, NOW + days(1))
        accept(user_id, NOW + days(2))  # a 3-day streak
        held = {h.badge.slug: h for h in awards.member_badges(user_id)}
        assert set(held) == {"first-label", "warming-up"}
        assert held["first-label"].mint_state == "pending"
        assert heard.count("first-label") == 1
    assert db.session.scalar(select(func.count(MintRequest.id)).where(MintRequest.user_id == user_id)) == 2


def test_level_badges_follow_xp(ctx):
    user_id = make_user("climber")
    ledger.credit(user_id, "xp", levels.xp_for_level(5), kind="quest_reward", key="lvl", now=NOW)
    assert "apprentice" in {h.badge.slug for h in awards.member_badges(user_id)}


def test_awarding_twice_gives_one_award(ctx):
    moderator = make_user("mod", role="moderator")
    user_id = make_user("twice")
    awards.award_badge(user_id, "community-hero", NOW, awarded_by=moderator, reason="Helped everyone")
    with pytest.raises(progression_errors.BadgeError, match="already holds"):
        awards.award_badge(user_id, "community-hero", NOW, awarded_by=moderator, reason="Again")
    assert awards.award_badge(user_id, "community-hero", NOW, quiet_if_held=True) is None
    assert db.session.scalar(select(func.count(BadgeAward.id)).where(BadgeAward.user_id == user_id)) == 1
    audit = db.session.scalars(select(AuditLog)).all()
    assert [(a.actor_id, a.action, a.reason) for a in audit] == [(moderator, "badge.award", "Helped everyone")]


def test_manual_award_needs_a_reason_and_a_real_badge(ctx):
    moderator = make_user("mod", role="moderator")
    user_id = make_user("reasonless")
    with pytest.raises(progression_errors.BadgeError, match="reason"):
        awards.award_badge(user_id, "community-hero", NOW, awarded_by=moderator, reason="  ")
    with pytest.raises(progression_errors.BadgeError, match="no such badge"):
        awards.award_badge(user_id, "nope", NOW, awarded_by=moderator, reason="x")
    assert db.session.scalar(select(BadgeAward.id)) is None


def test_revoke_cancels_the_mint_is_audited_and_rules_do_not_bring_it_back(ctx):
    moderator = make_user("mod", role="moderator")
    user_id = make_user("cheater")
    accept(user_id, NOW)
    award = db.session.scalar(select(BadgeAward).where(BadgeAward.badge_slug == "first-label"))
    awards.revoke_badge(award.id, actor_id=moderator, reason="Spam labels", now=NOW)
    with pytest.raises(progression_errors.BadgeError, match="already revoked"):
        awards.revoke_badge(award.id, actor_id=moderator, reason="Again", now=NOW)
    assert awards.member_badges(user_id) == []
    assert db.session.scalar(select(MintRequest.state).where(MintRequest.award_id == award.id)) == "cancelled"
    accept(user_id, NOW + days(1))  # the rule still holds, but a revoked badge stays revoked
    assert "first-label" not in {h.badge.slug for h in awards.member_badges(user_id)}
    # A moderator may restore it; the mint request goes back to pending.
    awards.award_badge(user_id, "first-label", NOW, awarded_by=moderator, reason="Appeal upheld")
    assert db.session.scalar(select(MintRequest.state).where(MintRequest.award_id == award.id)) == "pending"
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["badge.revoke", "badge.award"]


def test_rarity_is_the_share_of_members_holding_it(ctx):
    moderator = make_user("mod", role="moderator")
    holders = [make_user(f"holder{i}") for i in range(3)]
    for user_id in holders:
        awards.award_badge(user_id, "founding-member", NOW, awarded_by=moderator, reason="Season one")
    gallery = {g.badge.slug: g for g in awards.badge_gallery(holders[0])}
    assert gallery["founding-member"].holders == 3
    assert gallery["founding-member"].percent == pytest.approx(3 / 4)
    assert gallery["founding-member"].held and not gallery["community-hero"].held
    page = awards.badge_page("founding-member", holders[0])
    assert page.holders == 3 and page.viewer_mint_state == "pending"
    assert awards.badge_page("nope", None) is None


def test_quest_badge_reward_is_awarded_on_claim(ctx):
    moderator = make_user("mod", role="moderator")
    quest = quests.create_quest(
        quests.QuestDefinition(
            title="Badge quest", period="daily", objective="label_items", target=1, starts_at=NOW - days(1),
            reward_badge="founding-member",
        ),
        actor_id=moderator,
        now=NOW,
    )
    user_id = make_user("quester")
    accept(user_id, NOW)
    quest_cards.claim_quest(user_id, quest.id, NOW)
    slugs = {h.badge.slug for h in awards.member_badges(user_id)}
    assert {"founding-member", "quester", "first-label"} <= slugs


@pytest.mark.postgres_only
def test_two_awards_racing_make_one_award_and_one_mint_request(app, ctx):
    import threading

    user_id = make_user("raced")
    db.session.remove()
    barrier = threading.Barrier(2)
    results = []

    def award():
        with app.app_context():
            barrier.wait()
            try:
                results.append(awards.award_badge(user_id, "founding-member", NOW, quiet_if_held=True) is not None)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=award) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False, True]
    assert db.session.scalar(select(func.count(BadgeAward.id))) == 1
    assert db.session.scalar(select(func.count(MintRequest.id))) == 1


def test_hidden_members_are_not_listed_as_holders_but_count(ctx):
    from sapien.accounts.models import User

    moderator = make_user("mod", role="moderator")
    shy, open_ = make_user("shy"), make_user("open")
    db.session.get(User, shy).hide_from_boards = True
    db.session.commit()
    for user_id in (shy, open_):
        awards.award_badge(user_id, "founding-member", NOW, awarded_by=moderator, reason="Season one")
    names = lambda page: [holder[0] for holder in page.recent_holders]  # noqa: E731
    public = awards.badge_page("founding-member", None)
    assert names(public) == ["open"] and public.holders == 2
    assert set(names(awards.badge_page("founding-member", shy))) == {"shy", "open"}
    assert set(names(awards.badge_page("founding-member", moderator, include_hidden=True))) == {"shy", "open"}
