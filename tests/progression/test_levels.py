from __future__ import annotations

from sqlalchemy import func, select

from sapien import events
from sapien.extensions import db
from sapien.ledger import service as ledger
from sapien.notifications.views import shown
from sapien.progression import levels as progression_levels
from sapien.progression.models import LevelUp
from tests.progression.helpers import NOW, make_user


def test_curve_is_documented_and_configurable(ctx):
    assert [progression_levels.xp_for_level(level) for level in (1, 2, 3, 4, 5)] == [0, 100, 300, 600, 1000]
    assert progression_levels.level_for_xp(99) == 1 and progression_levels.level_for_xp(100) == 2 and progression_levels.level_for_xp(4500) == 10
    assert progression_levels.xp_for_level(3, base=50) == 150
    ctx.config["LEVEL_XP_BASE"] = 10
    try:
        assert progression_levels.level_for_xp(30) == 3
    finally:
        ctx.config["LEVEL_XP_BASE"] = 100
    progress = progression_levels.level_progress(350)
    assert (progress.level, progress.into_level, progress.span, progress.percent) == (3, 50, 300, 16)


def test_xp_postings_record_each_level_once_and_announce_it(ctx):
    user_id = make_user("leveller")
    heard = []

    def listener(_sender, **kwargs):
        heard.append((kwargs["user_id"], kwargs["level"]))

    events.level_reached.connect(listener)
    try:
        ledger.credit(user_id, "xp", 60, kind="labeling:text_classification", key="a", now=NOW)
        assert heard == []
        ledger.credit(user_id, "xp", 300, kind="labeling:text_classification", key="b", now=NOW)  # 360 XP: level 3
        ledger.credit(user_id, "xp", 300, kind="labeling:text_classification", key="b", now=NOW)  # same key: no-op
        progression_levels.record_level_ups(user_id, 360, NOW)  # replayed: nothing new
    finally:
        events.level_reached.disconnect(listener)
    assert heard == [(user_id, 2), (user_id, 3)]
    levels = db.session.scalars(select(LevelUp.level).where(LevelUp.user_id == user_id).order_by(LevelUp.level)).all()
    assert levels == [2, 3]
    with ctx.test_request_context():
        texts = [n.text for n in shown(user_id)]
    assert "You reached level 3!" in texts
    assert db.session.scalar(select(func.count(LevelUp.id))) == 2


def test_xp_history_sums_per_day(ctx):
    from datetime import timedelta

    user_id = make_user("historian")
    ledger.credit(user_id, "xp", 10, kind="quest_reward", key="h1", now=NOW - timedelta(days=2))
    ledger.credit(user_id, "xp", 15, kind="quest_reward", key="h2", now=NOW - timedelta(days=2))
    ledger.credit(user_id, "xp", 7, kind="quest_reward", key="h3", now=NOW)
    ledger.credit(user_id, "points", 99, kind="quest_reward", key="h4", now=NOW)
    history = progression_levels.xp_history(user_id, NOW, days=5)
    assert [d.xp for d in history] == [0, 0, 25, 0, 7]
    assert history[-1].day == NOW.date()
