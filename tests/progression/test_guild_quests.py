"""Guild quests: a guild's members progress together; each member claims the reward once per period."""

from __future__ import annotations

import threading
from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import func, select

from sapien.database import utcnow
from sapien.extensions import db
from sapien.guilds import founding, membership
from sapien.ledger import service as ledger
from sapien.notifications.models import Notification
from sapien.progression import awards, quest_cards, quests, streaks
from sapien.progression import errors as progression_errors
from sapien.progression.models import GuildQuestProgress, MemberProgress, Quest, QuestProgress
from tests.progression.helpers import NOW, accept, days, gold, make_user, review

HX = {"HX-Request": "true"}
_keys = count(1)


def define(**overrides) -> quests.QuestDefinition:
    values = dict(
        title="Guild labels",
        period="daily",
        objective="label_items",
        scope="guild",
        target=3,
        starts_at=NOW - days(30),
        reward_points=40,
        reward_xp=0,
    )
    values.update(overrides)
    return quests.QuestDefinition(**values)


def make_quest(moderator_id: int, now=NOW, **overrides) -> Quest:
    return quests.create_quest(define(**overrides), actor_id=moderator_id, now=now)


def found_guild(leader_id: int, name: str, now=NOW) -> int:
    ledger.credit(leader_id, "xp", 300, kind="test", key=f"gq-found:{next(_keys)}", now=now)  # level 3: may found a guild
    return founding.create_guild(leader_id, founding.GuildDraft(name=name), now).id


def guild_row(quest_id: int, guild_id: int) -> GuildQuestProgress | None:
    return db.session.scalar(
        select(GuildQuestProgress)
        .where(GuildQuestProgress.quest_id == quest_id, GuildQuestProgress.guild_id == guild_id)
        .execution_options(populate_existing=True)
    )


def guild_notices(user_id: int) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(Notification.user_id == user_id, Notification.kind == "guild_quest_complete")
    )


@pytest.fixture
def moderator(ctx):
    return make_user("mod", role="moderator")


@pytest.fixture
def owls(moderator):
    """A guild of two (leader and member) plus a member of another guild and a member of none."""
    leader, member = make_user("leader"), make_user("member")
    guild_id = found_guild(leader, "Night Owls")
    membership.join(member, guild_id, NOW)
    rival = make_user("rival")
    other_guild = found_guild(rival, "Early Birds")
    loner = make_user("loner")
    return dict(guild=guild_id, leader=leader, member=member, other_guild=other_guild, rival=rival, loner=loner)


# --- progress -------------------------------------------------------------------------------------


def test_two_members_advance_one_guild_quest_and_completion_notifies_every_member(moderator, owls):
    quest = make_quest(moderator, target=3)
    images = make_quest(moderator, title="Guild images", task_type="image_classification", target=2)
    reviews = make_quest(moderator, title="Guild reviews", objective="reviews", target=2)
    accept(owls["leader"], NOW)
    accept(owls["member"], NOW)
    row = guild_row(quest.id, owls["guild"])
    assert (row.progress, row.completed_at) == (2, None)
    assert guild_row(images.id, owls["guild"]) is None  # another task type moves nothing
    assert guild_notices(owls["leader"]) == 0

    accept(owls["member"], NOW + timedelta(minutes=5))
    row = guild_row(quest.id, owls["guild"])
    assert row.progress == 3 and row.completed_at is not None
    completed_at = row.completed_at
    assert guild_notices(owls["leader"]) == 1 and guild_notices(owls["member"]) == 1
    assert guild_notices(owls["rival"]) == 0  # another guild's members hear nothing

    accept(owls["leader"], NOW + timedelta(minutes=10))  # past the target: counted, completed once, no second notice
    row = guild_row(quest.id, owls["guild"])
    assert row.progress == 4 and row.completed_at == completed_at
    assert guild_notices(owls["leader"]) == 1 and guild_notices(owls["member"]) == 1

    # Members progress on guild quests only together: no member rows, no per-member completion.
    assert db.session.scalar(select(QuestProgress.id).where(QuestProgress.quest_id == quest.id)) is None

    # Other guilds and members in no guild move nothing of the Night Owls', and the loner nothing at all.
    accept(owls["rival"], NOW)
    accept(owls["loner"], NOW)
    assert guild_row(quest.id, owls["guild"]).progress == 4
    assert guild_row(quest.id, owls["other_guild"]).progress == 1
    assert db.session.scalar(select(func.count(GuildQuestProgress.id)).where(GuildQuestProgress.quest_id == quest.id)) == 2

    accept(owls["leader"], NOW, task_type="image_classification")
    review(owls["member"], owls["loner"], NOW)
    review(owls["leader"], owls["loner"], NOW)
    assert guild_row(images.id, owls["guild"]).progress == 1
    reviewed = guild_row(reviews.id, owls["guild"])
    assert reviewed.progress == 2 and reviewed.completed_at is not None
    assert guild_notices(owls["leader"]) == 2 and guild_notices(owls["member"]) == 2


def test_guild_progress_rolls_over_with_the_period(moderator, owls):
    quest = make_quest(moderator, target=2)
    accept(owls["leader"], NOW)
    accept(owls["member"], NOW + days(1))
    rows = db.session.scalars(
        select(GuildQuestProgress).where(GuildQuestProgress.quest_id == quest.id).order_by(GuildQuestProgress.period_key)
    ).all()
    assert [(r.period_key, r.progress) for r in rows] == [("2026-11-18", 1), ("2026-11-19", 1)]


def test_member_quests_and_guild_quests_move_side_by_side(moderator, owls):
    mine = make_quest(moderator, title="My labels", scope="member", target=2)
    ours = make_quest(moderator, title="Our labels", target=2)
    accept(owls["leader"], NOW)
    accept(owls["member"], NOW)
    mine_rows = db.session.scalars(select(QuestProgress).where(QuestProgress.quest_id == mine.id)).all()
    assert sorted(r.progress for r in mine_rows) == [1, 1] and all(r.completed_at is None for r in mine_rows)
    assert guild_row(ours.id, owls["guild"]).completed_at is not None
    cards = {card.quest.id: card for card in quest_cards.quest_cards(owls["leader"], NOW)}
    assert (cards[mine.id].progress, cards[mine.id].is_guild) == (1, False)
    assert (cards[ours.id].progress, cards[ours.id].guild_name, cards[ours.id].claimable) == (2, "Night Owls", True)


@pytest.mark.postgres_only
def test_concurrent_work_of_many_members_counts_every_item_and_completes_once(app, moderator, owls):
    quest_id = make_quest(moderator, target=4).id
    workers = [owls["leader"], owls["member"]]
    for number in range(2):
        user_id = make_user(f"helper{number}")
        membership.join(user_id, owls["guild"], NOW)
        workers.append(user_id)
    guild_id = owls["guild"]
    db.session.remove()
    barrier = threading.Barrier(len(workers))

    def work(user_id: int):
        with app.test_request_context():
            barrier.wait()
            try:
                accept(user_id, NOW)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(user_id,)) for user_id in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    row = guild_row(quest_id, guild_id)
    assert row.progress == 4 and row.completed_at is not None
    assert all(guild_notices(user_id) == 1 for user_id in workers)


# --- claims ---------------------------------------------------------------------------------------


def test_each_member_claims_once_including_one_who_joined_after_completion(moderator, owls):
    quest = make_quest(moderator, target=2, reward_points=40, reward_freezes=1)
    with pytest.raises(progression_errors.QuestError, match="Your guild has not finished this quest yet."):
        quest_cards.claim_quest(owls["leader"], quest.id, NOW)
    accept(owls["leader"], NOW)
    accept(owls["member"], NOW)

    claimed = quest_cards.claim_quest(owls["leader"], quest.id, NOW)
    assert claimed.claimed_at is not None and claimed.period_key == "2026-11-18"
    with pytest.raises(progression_errors.QuestError, match="already claimed"):
        quest_cards.claim_quest(owls["leader"], quest.id, NOW)
    quest_cards.claim_quest(owls["member"], quest.id, NOW)
    for user_id in (owls["leader"], owls["member"]):
        assert ledger.balance(user_id, "points") == 40
        assert streaks.streak_state(user_id, NOW).freezes == 1
        assert db.session.get(MemberProgress, user_id).quests_completed == 1  # a claimed guild quest counts as done
        assert "quester" in {held.badge.slug for held in awards.member_badges(user_id)}

    # A member who joins after the guild finished the period still claims it (they are in the guild now).
    late = make_user("late")
    membership.join(late, owls["guild"], NOW + timedelta(hours=1))
    card = next(c for c in quest_cards.quest_cards(late, NOW + timedelta(hours=1)) if c.quest.id == quest.id)
    assert card.claimable and card.completed
    quest_cards.claim_quest(late, quest.id, NOW + timedelta(hours=1))
    assert ledger.balance(late, "points") == 40

    # Members in other guilds or in none cannot claim the Night Owls' completion.
    with pytest.raises(progression_errors.QuestError, match="Your guild has not finished"):
        quest_cards.claim_quest(owls["rival"], quest.id, NOW)
    assert ledger.balance(owls["rival"], "points") == 0


def test_switching_guilds_never_pays_a_period_twice(moderator, owls):
    quest = make_quest(moderator, target=1)
    accept(owls["member"], NOW)  # Night Owls complete today
    accept(owls["rival"], NOW)  # and so do the Early Birds
    quest_cards.claim_quest(owls["member"], quest.id, NOW)
    membership.leave(owls["member"], NOW)
    membership.join(owls["member"], owls["other_guild"], NOW + timedelta(minutes=1))
    with pytest.raises(progression_errors.QuestError, match="already claimed"):
        quest_cards.claim_quest(owls["member"], quest.id, NOW + timedelta(minutes=2))
    assert ledger.balance(owls["member"], "points") == 40


def test_an_earlier_period_is_claimable_only_by_members_who_were_there(moderator, owls):
    quest = make_quest(moderator, target=1)
    accept(owls["member"], NOW)  # completed on the 18th
    tomorrow = NOW + days(1)
    newcomer = make_user("newcomer")
    membership.join(newcomer, owls["guild"], tomorrow)
    with pytest.raises(progression_errors.QuestError, match="Your guild has not finished"):
        quest_cards.claim_quest(newcomer, quest.id, tomorrow)
    assert quest_cards.claim_quest(owls["leader"], quest.id, tomorrow).period_key == "2026-11-18"
    assert ledger.balance(owls["leader"], "points") == 40


def test_a_member_in_no_guild_cannot_claim(moderator, owls):
    quest = make_quest(moderator, target=1)
    accept(owls["leader"], NOW)
    with pytest.raises(progression_errors.QuestError) as caught:
        quest_cards.claim_quest(owls["loner"], quest.id, NOW)
    assert "join a guild to claim" in str(caught.value)
    card = next(c for c in quest_cards.quest_cards(owls["loner"], NOW) if c.quest.id == quest.id)
    assert card.needs_guild and not card.claimable and card.progress == 0
    assert ledger.balance(owls["loner"], "points") == 0
    assert db.session.scalar(select(QuestProgress.id).where(QuestProgress.user_id == owls["loner"])) is None


@pytest.mark.postgres_only
def test_two_claims_at_once_pay_one_reward(app, moderator, owls):
    quest_id = make_quest(moderator, target=1, reward_points=70, reward_freezes=1).id
    accept(owls["member"], NOW)
    user_id = owls["leader"]
    db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def claim():
        with app.test_request_context():
            barrier.wait()
            try:
                quest_cards.claim_quest(user_id, quest_id, NOW)
                outcomes.append("paid")
            except progression_errors.QuestError:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["paid", "refused"]
    assert ledger.balance(user_id, "points") == 70
    assert ledger.sum_of_entries(user_id, "points") == 70
    assert streaks.streak_state(user_id, NOW).freezes == 1
    assert db.session.get(MemberProgress, user_id).quests_completed == 1


# --- definitions ----------------------------------------------------------------------------------


def test_guild_scope_only_for_objectives_a_guild_can_share(moderator):
    refused = (
        (dict(objective="gold_accuracy", accuracy_percent=80), "scope", "can only count labeled items or reviews"),
        (dict(objective="streak_days"), "scope", "can only count labeled items or reviews"),
        (dict(objective="join_guild", target=1), "scope", "can only count labeled items or reviews"),
        (dict(scope="team"), "scope", "Choose a scope from the list."),
        (dict(target=50_001), "target", "No guild can reach 50001 in one period: the most is 50000."),
        (dict(period="weekly", target=250_001), "target", "the most is 250000"),
        (dict(scope="member", target=20_000), "target", "Nobody can reach 20000"),
    )
    for overrides, field, message in refused:
        with pytest.raises(progression_errors.QuestError) as caught:
            make_quest(moderator, **overrides)
        assert caught.value.field == field, overrides
        assert message in str(caught.value), overrides
    assert db.session.scalar(select(Quest.id)) is None
    # A guild may aim as high as GUILD_MAX_MEMBERS members could each reach, per task type or for reviews.
    assert make_quest(moderator, target=50_000).scope == "guild"
    assert make_quest(moderator, objective="reviews", target=20).scope == "guild"
    assert make_quest(moderator, task_type="image_classification").task_type == "image_classification"


def test_scope_cannot_change_once_members_made_progress(moderator, owls):
    quest = make_quest(moderator, scope="member", target=5)
    untouched = make_quest(moderator, title="Untouched", scope="member", objective="reviews", target=5)
    accept(owls["leader"], NOW)
    with pytest.raises(progression_errors.QuestError) as caught:
        quests.update_quest(quest.id, define(scope="guild", target=5), actor_id=moderator, now=NOW)
    assert caught.value.field == "scope" and "cannot change" in str(caught.value)
    assert quests.update_quest(
        untouched.id, define(title="Untouched", objective="reviews", target=5), actor_id=moderator, now=NOW
    ).scope == "guild"


def test_gold_answers_never_move_guild_rows(moderator, owls):
    make_quest(moderator, scope="member", objective="gold_accuracy", accuracy_percent=50, target=1)
    gold(owls["leader"], True, NOW)
    assert db.session.scalar(select(GuildQuestProgress.id)) is None


# --- pages ----------------------------------------------------------------------------------------


def quest_form(**overrides) -> dict:
    data = {
        "title": "Guild five",
        "description": "",
        "period": "daily",
        "objective": "label_items",
        "scope": "guild",
        "task_type": "",
        "target": "5",
        "accuracy_percent": "",
        "reward_points": "40",
        "reward_xp": "0",
        "reward_freezes": "0",
        "reward_badge": "",
        "starts_at": (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": "",
        "is_active": "y",
    }
    data.update(overrides)
    return data


def test_moderator_chooses_the_scope_with_clear_errors(app, make_member):
    moderator = make_member(role="moderator")
    page = moderator.client.get("/quests/manage/new").get_data(as_text=True)
    assert 'name="scope"' in page and "Each member" in page and "Whole guild" in page
    bad = moderator.post("/quests/manage/new", quest_form(objective="gold_accuracy", accuracy_percent="80"), headers=HX)
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "can only count labeled items or reviews" in body and 'id="scope-error"' in body
    bad = moderator.post("/quests/manage/new", quest_form(scope="everyone"))
    assert bad.status_code == 422 and "Choose an option from the list." in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Quest.id)) is None
    good = moderator.post("/quests/manage/new", quest_form())
    assert good.status_code == 303
    with app.app_context():
        quest = db.session.scalar(select(Quest))
        assert (quest.scope, quest.target) == ("guild", 5)
    assert "Whole guild" in moderator.client.get("/quests/manage").get_data(as_text=True)
    edit = moderator.client.get(f"/quests/manage/{quest.id}/edit").get_data(as_text=True)
    assert '<option selected value="guild">' in edit
    # A form without the field (an older page) keeps today's behaviour: each member.
    legacy = quest_form(title="Legacy")
    del legacy["scope"]
    assert moderator.post("/quests/manage/new", legacy).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Quest.scope).where(Quest.title == "Legacy")) == "member"


def _guild_for(app, leader, *members) -> tuple[int, str]:
    with app.test_request_context():
        now = utcnow()
        ledger.credit(leader.id, "xp", 300, kind="test", key=f"gq-found:{next(_keys)}", now=now)
        guild = founding.create_guild(leader.id, founding.GuildDraft(name="Night Owls"), now)
        for member in members:
            membership.join(member.id, guild.id, now)
        return guild.id, guild.slug


def _quest(app, moderator_id: int, **overrides) -> int:
    with app.test_request_context():
        now = utcnow()
        return make_quest(moderator_id, now=now, starts_at=now - days(1), **overrides).id


def test_quest_page_shows_the_guilds_progress_and_claims_over_htmx(app, make_member):
    moderator = make_member(role="moderator")
    leader, member, loner = make_member(), make_member(), make_member()
    _guild, slug = _guild_for(app, leader, member)
    quest_id = _quest(app, moderator.id, target=3)
    with app.test_request_context():
        accept(leader.id, utcnow())
        accept(member.id, utcnow())

    poll = member.client.get("/quests/progress", headers=HX)
    body = poll.get_data(as_text=True)
    assert poll.status_code == 200 and "<html" not in body
    assert "Your guild: 2 / 3" in body and "Night Owls" in body and f'href="/guilds/{slug}"' in body
    assert "Claim reward" not in body
    full = member.client.get("/quests").get_data(as_text=True)
    assert "<html" in full and "Your guild: 2 / 3" in full

    outsider = loner.client.get("/quests/progress", headers=HX).get_data(as_text=True)
    assert "Join a guild to take part" in outsider and 'href="/guilds/"' in outsider and "Your guild:" not in outsider

    with app.test_request_context():
        accept(member.id, utcnow())
    body = member.client.get("/quests/progress", headers=HX).get_data(as_text=True)
    assert "Your guild: 3 / 3" in body and "Claim reward" in body

    claimed = member.post(f"/quests/{quest_id}/claim", headers=HX)
    assert claimed.status_code == 200 and "Reward claimed" in claimed.get_data(as_text=True)
    again = member.post(f"/quests/{quest_id}/claim", headers=HX)
    assert again.status_code == 409 and "already claimed" in again.get_data(as_text=True)
    plain = leader.post(f"/quests/{quest_id}/claim")
    assert plain.status_code == 303 and plain.headers["Location"] == "/quests"

    refused = loner.post(f"/quests/{quest_id}/claim", headers=HX)
    assert refused.status_code == 409 and "join a guild to claim its reward" in refused.get_data(as_text=True)
    assert loner.post(f"/quests/{quest_id}/claim").status_code == 303  # a plain form: redirected, with the flash
    assert "join a guild to claim its reward" in loner.client.get("/quests").get_data(as_text=True)
    with app.app_context():
        assert [ledger.balance(m.id, "points") for m in (leader, member, loner)] == [40, 40, 0]
        notices = db.session.scalars(select(Notification).where(Notification.kind == "guild_quest_complete")).all()
        assert sorted(n.user_id for n in notices) == sorted([leader.id, member.id])
    bell = member.client.get("/notifications").get_data(as_text=True)
    assert "Your guild completed the quest “Guild labels”. Claim your reward." in bell


def test_guild_page_lists_its_guild_quests(app, make_member):
    moderator = make_member(role="moderator")
    leader, visitor = make_member(), make_member()
    _guild, slug = _guild_for(app, leader)
    _quest(app, moderator.id, title="Owls label together", target=4)
    _quest(app, moderator.id, title="Personal quest", scope="member", target=4)
    with app.test_request_context():
        accept(leader.id, utcnow())
    page = leader.client.get(f"/guilds/{slug}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body
    assert "Guild quests" in body and "Owls label together" in body and "1 / 4" in body
    assert "Personal quest" not in body
    fragment = visitor.client.get(f"/guilds/{slug}", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and "Owls label together" in fragment and "1 / 4" in fragment


@pytest.mark.browser
def test_a_guildmates_work_moves_the_card_live_and_the_member_claims_it(app, make_member, page):
    from playwright.sync_api import expect

    moderator = make_member(role="moderator")
    leader, member = make_member(), make_member()
    _guild_for(app, leader, member)
    _quest(app, moderator.id, title="Owls label together", target=2)
    app.config["QUEST_POLL_SECONDS"] = 1
    try:
        page.goto("/login")
        page.fill("input[name=login]", member.username)
        page.fill("input[name=password]", member.password)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")
        page.goto("/quests")
        card = page.locator("#quest-list .quest--guild")
        expect(card.locator(".quest__progress")).to_have_text("Your guild: 0 / 2")
        expect(card).to_contain_text("Night Owls")
        with app.test_request_context():
            accept(leader.id, utcnow())  # the guildmates' work, done elsewhere
            accept(leader.id, utcnow())
        expect(card.locator(".quest__progress")).to_have_text("Your guild: 2 / 2")
        card.get_by_role("button", name="Claim reward").click()
        expect(page.locator("#quest-list .quest--guild")).to_contain_text("Reward claimed")
    finally:
        app.config.pop("QUEST_POLL_SECONDS", None)
    with app.app_context():
        assert ledger.balance(member.id, "points") == 40
