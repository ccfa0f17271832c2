"""The game layer in a real browser: the level-up moment and the keyboard, reduced motion, the theme
switch, and no console error (CSP violations included) on any main page for a member and a moderator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from sapien.database import utcnow
from sapien.progression import quests
from tests.labeling.conftest import make_pack
from tests.progression.helpers import accept

pytestmark = pytest.mark.browser


def sign_in(page, member) -> None:
    page.goto("/login")
    page.get_by_label("Username or email").fill(member.username)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {member.username}")).to_be_visible()


def quest_done(app, moderator_id: int, member_id: int, title: str = "Do one") -> None:
    """A finished quest whose 150 XP reward takes a new member to level 2."""
    with app.app_context():
        quests.create_quest(
            quests.QuestDefinition(title=title, period="daily", objective="label_items", target=1,
                                    starts_at=utcnow() - timedelta(days=1), reward_xp=150),
            actor_id=moderator_id, now=utcnow(),
        )
        accept(member_id, utcnow())


def test_level_up_moment_appears_and_closes_with_escape_and_with_its_button(app, make_member, page, tmp_path):
    moderator, member = make_member(role="moderator"), make_member()
    quest_done(app, moderator.id, member.id)
    with app.test_request_context():
        make_pack(tmp_path, items=1, name="Expert reviews", min_level=2)
    sign_in(page, member)
    page.goto("/quests")
    page.get_by_role("button", name="Claim reward").click()
    dialog = page.get_by_role("dialog", name="Level 2!")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Expert reviews")  # what level 2 unlocks
    expect(dialog.get_by_role("button", name="Keep going")).to_be_focused()
    expect(page.locator("#flashes [role=status]", has_text="Level up! You reached level 2.")).to_have_count(1)  # announced
    expect(page.locator("#nav-xp")).to_have_text("150")  # counted up to the new total
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#statusbar .levelchip__level")).to_have_text("Lv 2")

    # The next level-up closes with the focused button (Enter).
    quest_done(app, moderator.id, member.id, title="Do another")
    page.goto("/quests")
    page.locator(".quest", has_text="Do another").get_by_role("button", name="Claim reward").click()
    second = page.get_by_role("dialog", name="Level 3!")
    expect(second).to_be_visible()
    page.keyboard.press("Enter")
    expect(second).to_have_count(0)
    page.wait_for_load_state("networkidle")  # no request still running on the server at teardown
    page.close()


def _animation(page, selector: str) -> str:
    return page.locator(selector).first.evaluate("element => getComputedStyle(element).animationName")


@pytest.mark.parametrize("motion, expected", [("no-preference", "modal-in"), ("reduce", "none")])
def test_reduced_motion_turns_the_animations_off(app, make_member, page, motion, expected):
    moderator, member = make_member(role="moderator"), make_member()
    quest_done(app, moderator.id, member.id)
    page.emulate_media(reduced_motion=motion)
    sign_in(page, member)
    page.goto("/quests")
    page.get_by_role("button", name="Claim reward").click()
    expect(page.get_by_role("dialog", name="Level 2!")).to_be_visible()
    assert _animation(page, "dialog.levelup") == expected
    assert _animation(page, ".levelup__emblem") == ("none" if motion == "reduce" else "pop")
    expect(page.locator("#nav-xp")).to_have_text("150")
    if motion == "reduce":
        expect(page.locator(".levelup__confetti")).to_be_hidden()
        assert "is-counting" not in (page.locator("#nav-xp").get_attribute("class") or "")
    page.keyboard.press("Escape")
    page.wait_for_load_state("networkidle")  # no request still running on the server at teardown
    page.close()


def test_theme_switch_persists_across_pages(make_member, page):
    page.emulate_media(color_scheme="light")
    page.goto("/design")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.get_by_label("Theme").select_option("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != background
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.wait_for_load_state("networkidle")  # no request still running on the server at teardown
    page.close()


MEMBER_PAGES = ["/", "/dashboard", "/work", "/work/history", "/quests", "/badges", "/badges/first-label",
                "/leaderboards/", "/leaderboards/league", "/leaderboards/me", "/guilds/", "/guilds/mine", "/guilds/new",
                "/notifications", "/settings", "/reputation", "/design"]
MODERATOR_PAGES = ["/manage/campaigns", "/manage/campaigns/new", "/manage/appeals", "/quests/manage", "/quests/manage/new",
                   "/moderation/jobs", "/review"]


def test_no_console_errors_on_the_main_pages_for_a_member_and_a_moderator(app, make_member, page, tmp_path):
    """The `page` fixture fails the test on any console error or page error (a CSP violation included)."""
    with app.test_request_context():
        slug = make_pack(tmp_path, items=3).slug
    moderator, member = make_member(role="moderator"), make_member()
    quest_done(app, moderator.id, member.id)
    sign_in(page, member)
    for path in [*MEMBER_PAGES, f"/packs/{slug}", f"/packs/{slug}/work", f"/u/{member.username}"]:
        response = page.goto(path)
        assert response.status < 400, path
        expect(page.locator("main#main")).to_be_visible()
    # A failed htmx form post (422 with the form's errors swapped in) must not trip the CSP either.
    page.goto("/settings")
    page.get_by_label("Display name").fill("")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".field__error").first).to_be_visible()
    # A boosted navigation and the live updates after a claim (level-up dialog, counting figures).
    page.goto("/quests")
    page.get_by_role("button", name="Claim reward").click()
    expect(page.get_by_role("dialog", name="Level 2!")).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Leaderboards").click()
    expect(page.get_by_role("heading", name="Leaderboards")).to_be_visible()
    page.get_by_label("Account menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    sign_in(page, moderator)
    for path in MODERATOR_PAGES:
        response = page.goto(path)
        assert response.status < 400, path
        expect(page.locator("main#main")).to_be_visible()
    page.wait_for_load_state("networkidle")  # no request still running on the server at teardown
    page.close()
