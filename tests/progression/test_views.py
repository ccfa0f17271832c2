from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from sapien.database import utcnow
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.notifications.models import Notification
from sapien.progression import awards, quests
from sapien.progression.models import BadgeAward, Quest
from tests.progression.helpers import accept

HX = {"HX-Request": "true"}


def quest_form(**overrides) -> dict:
    start = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "title": "Label five",
        "description": "",
        "period": "daily",
        "objective": "label_items",
        "task_type": "",
        "target": "5",
        "accuracy_percent": "",
        "reward_points": "40",
        "reward_xp": "150",
        "reward_freezes": "0",
        "reward_badge": "",
        "starts_at": start,
        "ends_at": "",
        "is_active": "y",
    }
    data.update(overrides)
    return data


def create_quest(app, moderator_id: int, **overrides) -> int:
    with app.app_context():
        quest = quests.create_quest(
            quests.QuestDefinition(
                title="Do one",
                period="daily",
                objective="label_items",
                target=1,
                starts_at=utcnow() - timedelta(days=1),
                reward_points=40,
                reward_xp=150,
                **overrides,
            ),
            actor_id=moderator_id,
            now=utcnow(),
        )
        return quest.id


def test_members_cannot_manage_quests_or_badges(app, make_member):
    member = make_member()
    assert member.client.get("/quests/manage").status_code == 403
    assert member.client.get("/quests/manage/new").status_code == 403
    assert member.post("/quests/manage/new", quest_form()).status_code == 403
    assert member.post("/badges/community-hero/award", {"username": member.username, "reason": "me"}).status_code == 403
    with app.app_context():
        award = awards.award_badge(member.id, "first-label", utcnow(), quiet_if_held=True)
        award_id = award.id
    assert member.post(f"/badges/awards/{award_id}/revoke", {"reason": "x"}).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(Quest.id)) is None
        assert db.session.get(BadgeAward, award_id).revoked_at is None


def test_moderator_defines_a_quest_with_clear_errors(app, make_member):
    moderator = make_member(role="moderator")
    page = moderator.client.get("/quests/manage/new")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    bad = moderator.post("/quests/manage/new", quest_form(target="999999"), headers=HX)
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert "Nobody can reach 999999" in body and "<html" not in body
    bad = moderator.post("/quests/manage/new", quest_form(ends_at="2020-01-01T00:00"))
    assert bad.status_code == 422 and "The quest must end after it starts." in bad.get_data(as_text=True)
    bad = moderator.post("/quests/manage/new", quest_form(target="lots"))
    assert bad.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(Quest.id)) is None
    good = moderator.post("/quests/manage/new", quest_form())
    assert good.status_code == 303 and good.headers["Location"] == "/quests/manage"
    with app.app_context():
        quest_id = db.session.scalar(select(Quest.id))
    edit = moderator.post(f"/quests/manage/{quest_id}/edit", quest_form(title="Label six", target="6"))
    assert edit.status_code == 303
    assert "Label six" in moderator.client.get("/quests/manage").get_data(as_text=True)
    assert moderator.client.get("/quests/manage/999/edit").status_code == 404


def test_quests_page_fragment_and_live_progress(app, make_member):
    moderator = make_member(role="moderator")
    create_quest(app, moderator.id)
    member = make_member()
    page = member.client.get("/quests")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True) and "Do one" in page.get_data(as_text=True)
    fragment = member.client.get("/quests", headers=HX)
    assert "<html" not in fragment.get_data(as_text=True) and "HX-Request" in fragment.headers["Vary"]
    poll = member.client.get("/quests/progress", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 10s, quests-changed from:body"' in poll and "0 / 1" in poll
    with app.app_context():
        accept(member.id, utcnow())
    poll = member.client.get("/quests/progress", headers=HX).get_data(as_text=True)
    assert "1 / 1" in poll and "Claim reward" in poll
    dashboard = member.client.get("/dashboard").get_data(as_text=True)
    assert "Claim reward" in dashboard and "1-day streak" in dashboard


def test_htmx_claim_swaps_the_statusbar_and_toasts_a_level_up(app, make_member):
    moderator = make_member(role="moderator")
    quest_id = create_quest(app, moderator.id)
    member = make_member()
    with app.app_context():
        accept(member.id, utcnow())
    response = member.post(f"/quests/{quest_id}/claim", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="statusbar" hx-swap-oob="true"' in body
    assert "Lv 2" in body  # 150 XP: level 2
    assert "Level up! You reached level 2." in body
    assert 'id="bell"' in body and 'hx-swap-oob="true"' in body and "bell__count" in body  # the level-up notification
    assert "Reward claimed" in body
    assert response.headers["HX-Trigger"] == "quests-changed"
    again = member.post(f"/quests/{quest_id}/claim", headers=HX)
    assert again.status_code == 409 and "already claimed" in again.get_data(as_text=True)
    assert 'hx-swap-oob="beforeend:#flashes"' in again.get_data(as_text=True)  # the flash, not a statusbar
    assert 'id="statusbar" hx-swap-oob' not in again.get_data(as_text=True)
    with app.app_context():
        assert ledger.balance(member.id, "points") == 40


def test_plain_claim_redirects_and_flashes_the_level_up(app, make_member):
    moderator = make_member(role="moderator")
    quest_id = create_quest(app, moderator.id)
    member = make_member()
    with app.app_context():
        accept(member.id, utcnow())
    response = member.post(f"/quests/{quest_id}/claim")
    assert response.status_code == 303
    page = member.client.get("/quests").get_data(as_text=True)
    assert "Level up! You reached level 2." in page
    assert member.post("/quests/424242/claim").status_code == 404


def test_any_htmx_request_that_moves_balances_refreshes_the_nav(app, make_member):
    member = make_member()
    other = make_member()
    with app.app_context():
        ledger.credit(member.id, "points", 500, kind="quest_reward", key="seed", now=utcnow())
    response = member.post("/streak/freeze", headers=HX)  # debits points for the member
    assert response.headers.get("HX-Redirect")
    quiet = member.client.get("/quests", headers=HX).get_data(as_text=True)
    assert 'id="statusbar" hx-swap-oob' not in quiet  # nothing changed in that request
    # Someone else's balance moving in my request does not touch my nav.
    with app.test_request_context():
        from sapien.progression import live

        live.mark_status_changed(other.id)
        from flask import g

        assert not getattr(g, "progression_status_changed", False)


def test_notifications_bell_and_ownership(app, make_member):
    member = make_member()
    other = make_member()
    with app.app_context():
        ledger.credit(member.id, "xp", 120, kind="quest_reward", key="x", now=utcnow())
        ledger.credit(other.id, "xp", 120, kind="quest_reward", key="y", now=utcnow())
        mine = db.session.scalar(select(Notification.id).where(Notification.user_id == member.id))
        theirs = db.session.scalar(select(Notification.id).where(Notification.user_id == other.id))
    bell = member.client.get("/notifications/bell", headers=HX).get_data(as_text=True)
    assert 'class="bell__count">1<' in bell and 'hx-trigger="every 30s"' in bell and "<html" not in bell
    assert "You reached level 2!" in member.client.get("/notifications").get_data(as_text=True)
    assert member.post(f"/notifications/{theirs}/read").status_code == 404
    with app.app_context():
        assert db.session.get(Notification, theirs).read_at is None
    response = member.post(f"/notifications/{mine}/read", headers=HX)
    assert response.status_code == 200 and 'id="bell"' in response.get_data(as_text=True)
    assert "bell__count" not in member.client.get("/notifications/bell").get_data(as_text=True)
    assert member.post("/notifications/read-all").status_code == 303
    assert member.client.get("/notifications/bell").status_code == 200
    assert app.test_client().get("/notifications/bell").status_code in (302, 303)


def test_badge_pages_art_and_manual_award(app, make_member):
    moderator = make_member(role="moderator")
    member = make_member()
    gallery = member.client.get("/badges")
    assert gallery.status_code == 200 and "Held by 0% of members" in gallery.get_data(as_text=True)
    assert "<html" not in member.client.get("/badges", headers=HX).get_data(as_text=True)
    art = member.client.get("/badges/art/community-hero.svg")
    assert art.status_code == 200 and art.mimetype == "image/svg+xml" and b"<svg" in art.data
    assert member.client.get("/badges/art/community-hero/silver.svg").status_code == 200
    assert member.client.get("/badges/art/community-hero/platinum.svg").status_code == 404
    assert member.client.get("/badges/art/nope.svg").status_code == 404
    assert member.client.get("/badges/nope").status_code == 404
    missing = moderator.post("/badges/community-hero/award", {"username": "ghost", "reason": "x"})
    assert missing.status_code == 422 and "no member with that username" in missing.get_data(as_text=True)
    no_reason = moderator.post("/badges/community-hero/award", {"username": member.username, "reason": ""})
    assert no_reason.status_code == 422
    ok = moderator.post("/badges/community-hero/award", {"username": member.username, "reason": "Great help"})
    assert ok.status_code == 303
    twice = moderator.post("/badges/community-hero/award", {"username": member.username, "reason": "Again"})
    assert twice.status_code == 422 and "already holds" in twice.get_data(as_text=True)
    page = member.client.get("/badges/community-hero").get_data(as_text=True)
    # No wallet linked yet: the mint waits for one (tests/chain/test_minting.py follows it to the chain).
    assert "Mint: waiting for you to link a wallet" in page and "Held by 50% of members" in page
    assert "Award by hand" not in page
    with app.app_context():
        award_id = db.session.scalar(select(BadgeAward.id))
    assert moderator.post(f"/badges/awards/{award_id}/revoke", {"reason": ""}).status_code == 303
    with app.app_context():
        assert db.session.get(BadgeAward, award_id).revoked_at is None
    assert moderator.post(f"/badges/awards/{award_id}/revoke", {"reason": "Mistake"}).status_code == 303
    assert moderator.post("/badges/awards/9999/revoke", {"reason": "x"}).status_code == 404
    with app.app_context():
        assert db.session.get(BadgeAward, award_id).revoked_at is not None


def test_profile_shows_progress_and_respects_privacy(app, make_member):
    member = make_member()
    viewer = make_member()
    with app.app_context():
        accept(member.id, utcnow(), xp=120)
    page = member.client.get(f"/u/{member.username}").get_data(as_text=True)
    assert "First label" in page and "XP over the last 30 days" in page and "Level 2" in page
    assert "profile-guild" not in page  # the guild slot renders only for a member of a guild
    assert re.search(r'Reputation</p>\s*<p class="stat__value">500<', page)  # a new member starts at 500
    with app.app_context():
        from sapien.accounts.models import User

        db.session.get(User, member.id).hide_from_boards = True
        db.session.commit()
    public = viewer.client.get(f"/u/{member.username}").get_data(as_text=True)
    assert "First label" in public and "XP over the last 30 days" not in public
    assert "keeps their activity private" in public
    assert "XP over the last 30 days" in member.client.get(f"/u/{member.username}").get_data(as_text=True)
    assert re.search(r"<html", viewer.client.get(f"/u/{member.username}", headers=HX).get_data(as_text=True)) is None


def test_polled_fragments_leave_flashes_alone(app, make_member):
    member = make_member()
    with member.client.session_transaction() as session:
        session["_flashes"] = [("success", "Kept for the next page")]
    for path in ("/quests/progress", "/notifications/bell"):
        body = member.client.get(path, headers=HX).get_data(as_text=True)
        assert 'id="flashes"' not in body
    assert "Kept for the next page" in member.client.get("/quests").get_data(as_text=True)
