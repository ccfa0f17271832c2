from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from sapien import events
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.periods import period_key
from sapien.progression import awards, quest_cards, quests, streaks
from sapien.progression import errors as progression_errors
from sapien.progression.models import Quest, QuestProgress
from tests.progression.helpers import NOW, accept, days, gold, make_user, review


def define(**overrides) -> quests.QuestDefinition:
    values = dict(
        title="Label ten texts",
        period="daily",
        objective="label_items",
        target=10,
        starts_at=NOW - days(30),
        ends_at=None,
        reward_points=50,
        reward_xp=20,
    )
    values.update(overrides)
    return quests.QuestDefinition(**values)


def make_quest(moderator_id: int, **overrides) -> Quest:
    return quests.create_quest(define(**overrides), actor_id=moderator_id, now=NOW)


@pytest.fixture
def moderator(ctx):
    return make_user("mod", role="moderator")


IMPOSSIBLE = (
    (dict(target=0), "target", "at least 1"),
    (dict(target=5000), "target", "Nobody can reach 5000"),
    (dict(period="weekly", target=6000), "target", "the most is 5000"),
    (dict(objective="join_guild", target=3), "target", "must be 1"),
    (dict(objective="gold_accuracy", target=10, accuracy_percent=101), "accuracy_percent", "between 1 and 100"),
    (dict(objective="gold_accuracy", target=10), "accuracy_percent", "between 1 and 100"),
    (dict(ends_at=NOW - days(31)), "ends_at", "end after it starts"),
    (dict(starts_at=NOW - days(3), ends_at=NOW - days(1)), "ends_at", "already past"),
    (dict(period="once"), "ends_at", "needs an end date"),
    (
        dict(period="once", objective="streak_days", target=10, starts_at=NOW + days(1), ends_at=NOW + days(5)),
        "target",
        "cannot fit",
    ),
    (dict(reward_points=0, reward_xp=0), "reward_points", "at least one reward"),
    (dict(reward_points=-5), "reward_points", "0 to 1,000,000"),
    (dict(reward_badge="no-such-badge"), "reward_badge", "catalogue"),
    (dict(title="  "), "title", "title"),
    (dict(objective="reviews", task_type="image"), "task_type", "only applies"),
)


def test_impossible_or_inconsistent_definitions_are_refused(moderator):
    # One test over every case (not parametrized): each case is pure validation, no need for a fresh database.
    for overrides, field, message in IMPOSSIBLE:
        with pytest.raises(progression_errors.QuestError) as caught:
            make_quest(moderator, **overrides)
        assert caught.value.field == field, overrides
        assert message in str(caught.value), overrides
    assert db.session.scalar(select(Quest.id)) is None


def test_labeling_progress_completes_and_claims_once(moderator):
    quest = make_quest(moderator, target=3, task_type="text_classification")
    user_id = make_user("worker")
    heard = []
    with events.quest_completed.connected_to(lambda _s, **kw: heard.append(kw["quest_id"])):
        with pytest.raises(progression_errors.QuestError, match="Finish the quest"):
            quest_cards.claim_quest(user_id, quest.id, NOW)
        accept(user_id, NOW, task_type="image_bbox")  # another task type: not counted
        accept(user_id, NOW)
        accept(user_id, NOW)
        card = quest_cards.quest_cards(user_id, NOW)[0]
        assert (card.progress, card.completed, card.claimable) == (2, False, False)
        accept(user_id, NOW)
        card = quest_cards.quest_cards(user_id, NOW)[0]
        assert (card.progress, card.completed, card.claimable, card.percent) == (3, True, True, 100)
        accept(user_id, NOW)  # past the target: completes only once
        assert heard.count(quest.id) == 1
    quest_cards.claim_quest(user_id, quest.id, NOW)
    assert ledger.balance(user_id, "points") == 50 and ledger.balance(user_id, "xp") == 20
    with pytest.raises(progression_errors.QuestError, match="already claimed"):
        quest_cards.claim_quest(user_id, quest.id, NOW)
    assert ledger.balance(user_id, "points") == 50
    card = quest_cards.quest_cards(user_id, NOW)[0]
    assert (card.claimed, card.claimable) == (True, False)


def test_daily_and_weekly_periods_roll_over_in_utc(moderator):
    daily = make_quest(moderator, target=2)
    weekly = make_quest(moderator, title="Weekly", period="weekly", target=3)
    user_id = make_user("roller")
    sunday_late = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)  # ISO week 47 ends
    monday = datetime(2026, 11, 23, 0, 1, tzinfo=UTC)  # ISO week 48 begins
    assert period_key("weekly", sunday_late) == "2026-W47"
    assert period_key("weekly", monday) == "2026-W48"
    assert period_key("daily", monday) == "2026-11-23"
    assert period_key("weekly", datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"  # ISO year, not calendar year
    assert quests.period_ends(weekly, sunday_late) == datetime(2026, 11, 23, tzinfo=UTC)
    assert quests.period_ends(weekly, monday) == datetime(2026, 11, 30, tzinfo=UTC)
    assert quests.period_ends(daily, sunday_late) == datetime(2026, 11, 23, tzinfo=UTC)
    accept(user_id, sunday_late)
    accept(user_id, sunday_late)
    accept(user_id, monday)
    rows = db.session.execute(
        select(QuestProgress.quest_id, QuestProgress.period_key, QuestProgress.progress).order_by(QuestProgress.id)
    ).all()
    assert set(rows) == {
        (daily.id, "2026-11-22", 2),
        (weekly.id, "2026-W47", 2),
        (daily.id, "2026-11-23", 1),
        (weekly.id, "2026-W48", 1),
    }
    cards = {c.quest.id: c for c in quest_cards.quest_cards(user_id, monday)}
    assert cards[daily.id].progress == 1 and cards[weekly.id].progress == 1
    # Yesterday's finished daily quest can still be claimed today, once.
    assert cards[daily.id].claimable
    quest_cards.claim_quest(user_id, daily.id, monday)
    assert ledger.balance(user_id, "points") == 50
    assert not quest_cards.quest_cards(user_id, monday)[0].claimable


def test_gold_accuracy_reviews_streak_and_guild_objectives(moderator):
    accuracy = make_quest(moderator, title="Sharp", objective="gold_accuracy", target=4, accuracy_percent=75)
    reviews = make_quest(moderator, title="Review", objective="reviews", target=2)
    streak = make_quest(moderator, title="Streak", period="weekly", objective="streak_days", target=3)
    guild = make_quest(moderator, title="Guild", period="once", objective="join_guild", target=1, ends_at=NOW + days(30))
    user_id, author_id = make_user("allrounder"), make_user("author")
    for correct in (True, False, True, False):
        gold(user_id, correct, NOW)
    done = lambda: {c.quest.id for c in quest_cards.quest_cards(user_id, NOW + days(2)) if c.completed or c.claimable}  # noqa: E731
    assert accuracy.id not in done()  # 50% over 4: not enough
    gold(user_id, True, NOW)
    gold(user_id, True, NOW)
    assert accuracy.id not in done()  # 4 of 6 = 66%: not yet
    gold(user_id, True, NOW)
    gold(user_id, True, NOW)
    assert accuracy.id in done()  # 6 of 8 = 75%
    review(user_id, author_id, NOW)
    review(user_id, author_id, NOW)
    for day in range(3):
        accept(user_id, NOW + days(day))
    events.guild_joined.send(None, user_id=user_id, guild_id=7, now=NOW + days(2))
    assert {reviews.id, streak.id, guild.id} <= done()
    with ctx_request():
        from sapien.notifications.views import shown

        texts = [n.text for n in shown(author_id)]
    assert "A reviewer marked one of your submissions as accepted." in texts


def ctx_request():
    from flask import current_app

    return current_app.test_request_context()


@pytest.mark.postgres_only
def test_two_claims_at_once_pay_one_reward(app, moderator):
    quest = make_quest(moderator, target=1, reward_points=70, reward_xp=0, reward_freezes=1)
    user_id = make_user("racer")
    accept(user_id, NOW)
    quest_id = quest.id
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


def test_inactive_or_future_quests_do_not_move(moderator):
    paused = make_quest(moderator, is_active=False)
    future = make_quest(moderator, title="Later", starts_at=NOW + days(2))
    user_id = make_user("early")
    accept(user_id, NOW)
    assert db.session.scalar(select(QuestProgress.id).where(QuestProgress.quest_id.in_([paused.id, future.id]))) is None
    assert quest_cards.quest_cards(user_id, NOW) == []


@pytest.mark.postgres_only
def test_concurrent_events_count_every_label_and_the_day_once(app, moderator):
    from sapien.progression.models import MemberProgress

    quest_id = make_quest(moderator, target=4).id
    user_id = make_user("busy")
    db.session.remove()
    barrier = threading.Barrier(4)

    def work():
        with app.app_context():
            barrier.wait()
            try:
                accept(user_id, NOW)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    row = db.session.get(MemberProgress, user_id)
    assert (row.labels_accepted, row.current_streak) == (4, 1)
    progress = db.session.scalars(select(QuestProgress).where(QuestProgress.quest_id == quest_id)).one()
    assert progress.progress == 4 and progress.completed_at is not None
    assert sorted(b.badge.slug for b in awards.member_badges(user_id)) == ["first-label", "quester"]  # once each


def test_listeners_see_quest_changes_made_by_another_process(moderator):
    """Listeners read quests from a per-process cache; a quest change anywhere must reach them."""
    quest = make_quest(moderator, target=5)
    user_id = make_user("cached")
    accept(user_id, NOW)  # fills this process's cache with the quest
    assert quest_cards.quest_cards(user_id, NOW)[0].progress == 1
    # Another process deactivates the quest: its row changes and it bumps the shared version in Redis.
    db.session.execute(Quest.__table__.update().where(Quest.id == quest.id).values(is_active=False))
    db.session.commit()
    accept(user_id, NOW)
    assert db.session.scalar(select(QuestProgress.progress)) == 2, "stale until the version moves"
    from sapien.queue import redis_connection

    redis_connection().set(quests.quest_version_key(), "another-process-wrote")
    accept(user_id, NOW)
    assert db.session.scalar(select(QuestProgress.progress)) == 2
    # And an edit through the service bumps the version itself.
    quests.update_quest(quest.id, define(target=5, is_active=True), actor_id=moderator, now=NOW)
    accept(user_id, NOW)
    assert db.session.scalar(select(QuestProgress.progress)) == 3
