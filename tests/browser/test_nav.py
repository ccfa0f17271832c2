"""The site's nav in real chromium: one row on a 1280 px screen for a member and for a moderator, a menu
button on a phone that reaches every section, and both menus driven by the keyboard alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MEMBER_SECTIONS = ["Dashboard", "Work", "Quests", "Badges", "Leaderboards", "Guilds", "Arena"]
MODERATOR_LINKS = ["Campaigns", "Appeals", "Manage quests", "Members", "Jobs"]


def sign_in(page, member) -> None:
    page.goto("/login")
    page.get_by_label("Username or email").fill(member.username)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.wait_for_load_state("load")


def with_big_balances(app, member) -> None:
    """Six-figure balances: the widest status bar a busy member shows."""
    from sapien.ledger import service as ledger

    with app.app_context():
        ledger.credit(member.id, "xp", 123_456, kind="k", key=f"nav:xp:{member.id}", now=datetime.now(UTC))
        ledger.credit(member.id, "points", 987_654, kind="k", key=f"nav:points:{member.id}", now=datetime.now(UTC))


def header_parts(page):
    """The boxes of everything in the top bar a member sees."""
    selectors = [".brand", ".mainnav > a", ".mainnav .navgroup > summary", "#statusbar", "#bell", ".usermenu > summary"]
    boxes = []
    for selector in selectors:
        for element in page.locator(selector).all():
            if element.is_visible():
                boxes.append((selector, element.bounding_box()))
    return boxes


def assert_one_row(page, expected_links: int) -> None:
    parts = header_parts(page)
    assert sum(1 for selector, _ in parts if selector == ".mainnav > a") == expected_links
    top = max(box["y"] for _, box in parts)
    bottom = min(box["y"] + box["height"] for _, box in parts)
    assert top < bottom, f"the header's parts do not share a row: {[(s, b['y'], b['height']) for s, b in parts]}"
    right = max(box["x"] + box["width"] for _, box in parts)
    assert right <= page.viewport_size["width"], "the header runs off the screen"
    assert page.locator(".topbar").bounding_box()["height"] < 80


@pytest.mark.parametrize("role, links", [("member", 7), ("moderator", 8)])  # a moderator also reviews
def test_the_nav_is_one_row_at_1280px(app, make_member, page, role, links):
    member = make_member(role=role)
    with_big_balances(app, member)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, member)
    expect(page.locator(".navtoggle")).to_be_hidden()  # no menu button where the sections fit
    assert_one_row(page, links)
    if role == "moderator":
        # The moderator's pages live in one menu; its summary shows when one of them is the current page.
        summary = page.locator(".navgroup > summary")
        underline = "getComputedStyle(el).borderBottomColor"
        elsewhere = summary.evaluate(f"el => {underline}")
        page.goto("/moderation/jobs")
        assert page.locator(".navgroup a[aria-current=page]").count() == 1
        assert summary.evaluate(f"el => {underline}") != elsewhere
        assert_one_row(page, links)


def test_on_a_phone_every_section_is_behind_the_menu_button(app, make_member, page):
    moderator = make_member(role="moderator")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, moderator)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    toggle = page.locator(".navtoggle > summary")
    expect(toggle).to_be_visible()
    for name in [*MEMBER_SECTIONS, "Review"]:
        toggle.click()
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_in_viewport()
        # A click elsewhere closes the menu again.
        page.mouse.click(195, 835)  # below the open menu
        expect(nav).to_be_hidden()
    toggle.click()
    nav.locator(".navgroup > summary").click()
    for name in MODERATOR_LINKS:
        link = nav.get_by_role("link", name=name, exact=True)
        link.scroll_into_view_if_needed()  # the open menu scrolls (max-height 75vh) once the sections outgrow a phone
        expect(link).to_be_in_viewport()
    nav.get_by_role("link", name="Guilds", exact=True).click()
    expect(page).to_have_url(re.compile(r"/guilds/$"))
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()  # the new page starts with it closed


def test_the_phone_menu_works_by_keyboard(app, make_member, page):
    member = make_member()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, member)
    toggle = page.locator(".navtoggle > summary")
    toggle.focus()
    page.keyboard.press("Enter")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Dashboard")).to_be_focused()
    page.keyboard.press("Escape")  # closes it and gives the focus back to the button
    expect(nav).to_be_hidden()
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    for _ in MEMBER_SECTIONS[: MEMBER_SECTIONS.index("Guilds") + 1]:
        page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Guilds")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/guilds/$"))


def test_the_moderation_menu_works_by_keyboard(app, make_member, page):
    moderator = make_member(role="moderator")
    sign_in(page, moderator)  # the default 1280 px wide screen
    summary = page.locator(".navgroup > summary")
    summary.focus()
    page.keyboard.press("Enter")
    panel = page.locator(".navgroup__panel")
    expect(panel).to_be_visible()
    page.keyboard.press("Tab")
    expect(panel.get_by_role("link", name="Campaigns")).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(summary).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(panel.get_by_role("link").count()):  # down to the last link, Jobs
        page.keyboard.press("Tab")
    expect(panel.get_by_role("link", name="Jobs")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/moderation/jobs$"))
    expect(page.locator(".navgroup a[aria-current=page]")).to_have_text("Jobs")
