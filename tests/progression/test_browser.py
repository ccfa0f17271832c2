"""In a real browser: work done elsewhere moves the quest progress live, and claiming it moves the
nav XP bar, the level and the bell without a reload, with the level-up moment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sapien.database import utcnow
from sapien.progression import quests
from tests.progression.helpers import accept

pytestmark = pytest.mark.browser


@pytest.fixture
def fast_quest_polling(app):
    app.config["QUEST_POLL_SECONDS"] = 1
    yield
    app.config.pop("QUEST_POLL_SECONDS", None)


def test_quest_progress_xp_bar_and_level_move_without_reload(app, make_member, page, live_server, fast_quest_polling):
    from playwright.sync_api import expect

    moderator = make_member(role="moderator")
    member = make_member()
    with app.app_context():
        quests.create_quest(
            quests.QuestDefinition(
                title="Label two", period="daily", objective="label_items", target=2,
                starts_at=utcnow() - timedelta(days=1), reward_xp=150,
            ),
            actor_id=moderator.id,
            now=utcnow(),
        )
    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.goto("/quests")
    expect(page.locator("#statusbar .levelchip__level")).to_have_text("Lv 1")
    expect(page.locator("#quest-list .quest__progress")).to_have_text("0 / 2")
    with app.app_context():
        accept(member.id, utcnow())
        accept(member.id, utcnow())
    expect(page.locator("#quest-list .quest__progress")).to_have_text("2 / 2")
    page.locator("#quest-list").get_by_role("button", name="Claim reward").click()
    expect(page.get_by_role("dialog", name="Level 2!")).to_contain_text("Level up! You reached level 2.")
    page.keyboard.press("Escape")
    expect(page.locator("#statusbar .levelchip__level")).to_have_text("Lv 2")
    expect(page.locator("#bell .bell__count")).to_have_text("4")  # first badge, quest done, quester badge, level up
    expect(page.locator("#quest-list")).to_contain_text("Reward claimed")
