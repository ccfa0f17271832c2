"""The default quest catalogue: a deterministic daily and weekly rotation, idempotent however it runs
(service, job, CLI, first read), translated titles, reviewer quests for reviewers, and rewards that can
still be claimed once a rotated quest has ended."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from sapien.database import utcnow
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.periods import period_key, period_window
from sapien.progression import quest_cards, quests
from sapien.progression.models import Quest
from sapien.progression.quest_catalogue import CATALOGUE, ROTATION_SIZES, rotate_quests, rotation_for
from tests.progression.helpers import NOW, accept, days, make_user, review

EXPECTED = ROTATION_SIZES["daily"] + ROTATION_SIZES["weekly"]


def quest_count() -> int:
    return db.session.scalar(select(func.count(Quest.id)))


def test_every_template_is_a_quest_a_moderator_could_define(ctx):
    for template in CATALOGUE:
        quests.validate_quest(
            quests.QuestDefinition(
                title=template.title, description=template.description, period=template.period,
                objective=template.objective, target=template.target, starts_at=NOW, scope=template.scope,
                accuracy_percent=template.accuracy_percent, reward_points=template.reward_points,
                reward_xp=template.reward_xp, reward_freezes=template.reward_freezes,
            ),
            NOW,
            creating=True,
        )
    assert len({t.slug for t in CATALOGUE}) == len(CATALOGUE)


def test_the_pick_is_the_same_for_the_same_period_and_changes_between_periods():
    days_picked = [tuple(t.slug for t in rotation_for("daily", (NOW + days(n)).date().isoformat())) for n in range(14)]
    for n, picked in enumerate(days_picked):
        assert picked == tuple(t.slug for t in rotation_for("daily", (NOW + days(n)).date().isoformat()))
        assert len(picked) == ROTATION_SIZES["daily"] and picked[0] == "daily-label-20"  # the "always" template leads
    assert len(set(days_picked)) > 1, "the daily pick never changes"
    weeks = {tuple(t.slug for t in rotation_for("weekly", period_key("weekly", NOW + days(7 * n)))) for n in range(8)}
    assert len(weeks) > 1 and all("weekly-label-150" in pick for pick in weeks)


def test_rotation_creates_the_day_and_week_once_and_the_next_day_only_its_own(ctx):
    created = rotate_quests(NOW)
    assert len(created) == EXPECTED and quest_count() == EXPECTED
    assert rotate_quests(NOW) == [] and rotate_quests(NOW + timedelta(hours=11)) == []
    assert quest_count() == EXPECTED
    daily = db.session.scalars(select(Quest).where(Quest.period == "daily")).all()
    start, end = period_window("daily", NOW)
    assert {(q.starts_at, q.ends_at, q.rotation_key) for q in daily} == {(start, end, "2026-11-18")}
    assert {q.catalogue_slug for q in daily} == {t.slug for t in rotation_for("daily", "2026-11-18")}

    assert len(rotate_quests(NOW + days(1))) == ROTATION_SIZES["daily"]  # Thursday: same ISO week
    assert len(rotate_quests(NOW + days(5))) == EXPECTED  # the next Monday: a new day and a new week
    titles = {q.title for q in db.session.scalars(select(Quest))}
    assert "Label 20 items today" in titles and "Label 150 items this week" in titles


def test_a_rotated_quest_moves_and_pays_like_any_other(ctx):
    rotate_quests(NOW)
    user_id = make_user("ana")
    for n in range(20):
        accept(user_id, NOW + timedelta(minutes=n))
    card = next(c for c in quest_cards.quest_cards(user_id, NOW + timedelta(hours=1)) if c.quest.catalogue_slug == "daily-label-20")
    assert card.completed and card.claimable
    quest_cards.claim_quest(user_id, card.quest.id, NOW + timedelta(hours=1))
    assert ledger.balance(user_id, "points") == 40


def test_a_quest_finished_before_it_ended_can_still_be_claimed_the_next_day(ctx):
    rotate_quests(NOW)
    user_id = make_user("ana")
    for n in range(20):
        accept(user_id, NOW + timedelta(minutes=n))
    tomorrow = NOW + days(1)
    rotate_quests(tomorrow)
    cards = quest_cards.quest_cards(user_id, tomorrow)
    ended = [c for c in cards if c.ended]
    assert [c.quest.rotation_key for c in ended] == ["2026-11-18"] and ended[0].claimable
    today = next(c for c in cards if c.quest.catalogue_slug == "daily-label-20" and not c.ended)
    assert today.progress == 0 and not today.claimable
    quest_cards.claim_quest(user_id, ended[0].quest.id, tomorrow)
    assert ledger.balance(user_id, "points") == 40
    assert not any(c.ended for c in quest_cards.quest_cards(user_id, tomorrow))


def test_reviewer_quests_are_shown_to_reviewers_only(ctx):
    # Find a day whose pick has the daily review quest.
    day = next(NOW + days(n) for n in range(60) if "daily-review-10" in {t.slug for t in rotation_for("daily", (NOW + days(n)).date().isoformat())})
    rotate_quests(day)
    reviewer, member = make_user("rita", role="reviewer"), make_user("ana")
    assert "daily-review-10" in {c.quest.catalogue_slug for c in quest_cards.quest_cards(reviewer, day, can_review=True)}
    assert "daily-review-10" not in {c.quest.catalogue_slug for c in quest_cards.quest_cards(member, day, can_review=False)}
    for _ in range(10):
        review(reviewer, member, day)
    card = next(c for c in quest_cards.quest_cards(reviewer, day) if c.quest.catalogue_slug == "daily-review-10")
    assert card.completed


def test_the_job_and_the_cli_command_are_safe_to_run_twice(app):
    from jobs.progression import rotate_quests as rotate_job

    with app.app_context():
        assert len(rotate_job()) == EXPECTED
        assert rotate_job() == []
    runner = app.test_cli_runner()
    result = runner.invoke(args=["quests", "rotate"])
    assert result.exit_code == 0 and "already running" in result.output
    with app.app_context():
        db.session.execute(Quest.__table__.delete())
        db.session.commit()
    result = runner.invoke(args=["quests", "rotate"])
    assert result.exit_code == 0 and f"{EXPECTED} quest(s) created." in result.output
    with app.app_context():
        assert quest_count() == EXPECTED


def test_the_reconciler_lists_a_missing_rotation_until_it_runs(app):
    from sapien.progression.pending import _rotation_pending, rotation_job_id

    app.config["QUEST_ROTATION"] = True
    with app.app_context():
        pending = list(_rotation_pending())
        assert [(w.func, w.job_id) for w in pending] == [("jobs.progression.rotate_quests", rotation_job_id(utcnow()))]
        rotate_quests(utcnow())
        assert list(_rotation_pending()) == []
        app.config["QUEST_ROTATION"] = False
        db.session.execute(Quest.__table__.delete())
        db.session.commit()
        assert list(_rotation_pending()) == []  # switched off: nothing to do


def test_a_fresh_install_shows_quests_on_the_first_read(app, make_member):
    member = make_member()
    assert "No quests are running right now" in member.client.get("/quests").get_data(as_text=True)
    app.config["QUEST_ROTATION"] = True
    page = member.client.get("/quests").get_data(as_text=True)
    assert "Label 20 items today" in page and "Label 150 items this week" in page
    assert "Review 10 answers" not in page  # a new member cannot review yet
    dashboard = member.client.get("/dashboard").get_data(as_text=True)
    assert "Label 20 items today" in dashboard
    with app.app_context():
        assert quest_count() == EXPECTED  # the second read made nothing more


def test_catalogue_quests_read_in_the_members_language(app, make_member):
    app.config["QUEST_ROTATION"] = True
    member = make_member()
    page = member.client.get("/quests", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Étiquetez 20 éléments aujourd’hui" in page and "Label 20 items today" not in page
    page = member.client.get("/quests", headers={"Accept-Language": "id"}).get_data(as_text=True)
    assert "Labeli 20 item hari ini" in page


def test_moderators_still_make_their_own_quests_beside_the_catalogue(ctx):
    rotate_quests(NOW)
    moderator = make_user("mod", role="moderator")
    quests.create_quest(
        quests.QuestDefinition(title="Special event", period="daily", objective="label_items", target=3,
                               starts_at=NOW - days(1), reward_xp=10),
        actor_id=moderator, now=NOW,
    )
    user_id = make_user("ana")
    titles = {c.quest.title for c in quest_cards.quest_cards(user_id, NOW)}
    assert "Special event" in titles and "Label 20 items today" in titles
