"""The site's nav in real chromium: one row on a 1280 px screen for a member of an organization, a moderator and
an admin with six-figure balances (a few sections as links, the rest in the Community and Rewards menus,
the Moderation menu last), a menu button on a phone that reaches every section, and the menus driven by the
keyboard alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MEMBER_LINKS = ["Dashboard", "Work", "Arena", "Quests", "Leaderboards"]
GROUPS = {
    "Community": ["Guilds", "Badges", "Governance"],
    "Rewards": ["Tokens & stake", "Wallet & withdrawals", "Airdrops"],
    "Moderation": ["Campaigns", "Appeals", "Manage quests", "Members", "Jobs"],
}


def sign_in(page, member) -> None:
    page.goto("/login")
    page.get_by_label("Username or email").fill(member.username)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.wait_for_load_state("load")


def with_big_balances(app, member) -> None:
    """Six-figure balances: the widest status bar a busy member shows."""
    from sapien.i18n import TOKEN_DECIMALS
    from sapien.ledger import service as ledger

    now = datetime.now(UTC)
    with app.app_context():
        ledger.credit(member.id, "xp", 123_456, kind="k", key=f"nav:xp:{member.id}", now=now)
        ledger.credit(member.id, "points", 987_654, kind="k", key=f"nav:points:{member.id}", now=now)
        ledger.credit(member.id, "token", 456_789 * 10**TOKEN_DECIMALS, kind="k", key=f"nav:token:{member.id}", now=now)


def in_an_organization(app, member) -> None:
    from sapien.api import orgs

    with app.test_request_context():
        organization = orgs.create_organization("Umbrella Research", "umbrella", now=datetime.now(UTC))
        orgs.add_member(organization.id, member.username, role="owner", now=datetime.now(UTC))


def group(page, name: str):
    """A menu of the nav, found by its summary's words."""
    return page.get_by_role("navigation", name="Main").locator("details.navgroup").filter(
        has=page.locator(":scope > summary", has_text=name)
    )


def header_parts(page):
    """The boxes of everything in the top bar a member sees."""
    selectors = [".brand", ".mainnav > a", ".mainnav .navgroup > summary", "#statusbar", "#bell", ".usermenu > summary"]
    boxes = []
    for selector in selectors:
        for element in page.locator(selector).all():
            if element.is_visible():
                boxes.append((selector, element.bounding_box()))
    return boxes


def assert_one_row(page, links: list[str], groups: list[str]) -> None:
    nav = page.get_by_role("navigation", name="Main")
    assert nav.locator(":scope > a").all_inner_texts() == links
    assert [text.strip(" ▾") for text in nav.locator(".navgroup > summary").all_inner_texts()] == groups
    parts = header_parts(page)
    top = max(box["y"] for _, box in parts)
    bottom = min(box["y"] + box["height"] for _, box in parts)
    assert top < bottom, f"the header's parts do not share a row: {[(s, b['y'], b['height']) for s, b in parts]}"
    right = max(box["x"] + box["width"] for _, box in parts)
    assert right <= page.viewport_size["width"], "the header runs off the screen"
    assert page.locator(".topbar").bounding_box()["height"] < 80


def underline(summary) -> str:
    return summary.evaluate("el => getComputedStyle(el).borderBottomColor")


@pytest.mark.parametrize(
    "role, links, groups, inside",
    [
        # A member of an organization also has its link.
        ("member", [*MEMBER_LINKS, "Organization"], ["Community", "Rewards"], ("/guilds/", "Community", "Guilds")),
        ("moderator", [*MEMBER_LINKS[:2], "Review", *MEMBER_LINKS[2:]], [*GROUPS], ("/moderation/jobs", "Moderation", "Jobs")),
        ("admin", [*MEMBER_LINKS[:2], "Review", *MEMBER_LINKS[2:]], [*GROUPS], ("/economy/wallet", "Rewards", "Tokens & stake")),
    ],
)
def test_the_nav_is_one_row_at_1280px(app, make_member, page, role, links, groups, inside):
    member = make_member(role=role)
    with_big_balances(app, member)
    if role == "member":
        in_an_organization(app, member)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, member)
    expect(page.locator(".navtoggle")).to_be_hidden()  # no menu button where the sections fit
    assert_one_row(page, links, groups)
    # A menu's summary shows as current when one of its pages is the current page, and only that one.
    url, current, link = inside
    summaries = {name: group(page, name).locator(":scope > summary") for name in groups}
    elsewhere = underline(summaries[current])
    page.goto(url)
    expect(page.locator(".navgroup a[aria-current=page]")).to_have_text(link)
    assert underline(summaries[current]) != elsewhere
    for name in groups:
        if name != current:
            assert underline(summaries[name]) == elsewhere
    assert_one_row(page, links, groups)


def test_on_a_phone_every_section_is_behind_the_menu_button(app, make_member, page):
    moderator = make_member(role="moderator")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, moderator)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    toggle = page.locator(".navtoggle > summary")
    expect(toggle).to_be_visible()
    for name in [*MEMBER_LINKS, "Review"]:
        toggle.click()
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_in_viewport()
        # A click elsewhere closes the menu again.
        page.mouse.click(195, 835)  # below the open menu
        expect(nav).to_be_hidden()
    toggle.click()
    for name, names in GROUPS.items():
        group(page, name).locator(":scope > summary").click()  # opening a group closes the one open before
        for other in GROUPS:
            expect(group(page, other).locator(".navgroup__panel")).to_be_visible(visible=other == name)
        for link_name in names:
            link = nav.get_by_role("link", name=link_name, exact=True)
            link.scroll_into_view_if_needed()  # the open menu scrolls (max-height 75vh) once the sections outgrow a phone
            expect(link).to_be_in_viewport()
    group(page, "Community").locator(":scope > summary").click()
    nav.get_by_role("link", name="Governance", exact=True).click()
    expect(page).to_have_url(re.compile(r"/governance/$"))
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()  # the new page starts with it closed
    page.locator(".navtoggle > summary").click()
    expect(group(page, "Community").locator(":scope > summary")).to_have_css("border-left-color", re.compile(r"^rgb\((?!0, 0, 0\))"))
    expect(group(page, "Community").locator("a[aria-current=page]")).to_have_text("Governance")


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
    for _ in range(len(MEMBER_LINKS) + 1):  # past the links to the Community menu
        page.keyboard.press("Tab")
    community = group(page, "Community")
    expect(community.locator(":scope > summary")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(community.get_by_role("link", name="Guilds")).to_be_focused()
    page.keyboard.press("Escape")  # the innermost menu first: the group closes, the nav stays open
    expect(community.locator(".navgroup__panel")).to_be_hidden()
    expect(nav).to_be_visible()
    expect(community.locator(":scope > summary")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/guilds/$"))


def test_a_group_opened_before_the_phone_menus_toggle_event_stays_open(app, make_member, page):
    """The toggle event of the phone's menu button comes a task after it opens: a quick keyboard user may
    have opened a group inside the nav by then, and that group must stay open."""
    member = make_member()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, member)
    community = group(page, "Community")
    page.evaluate("""() => {
        document.querySelector('.navtoggle').open = true;
        [...document.querySelectorAll('details.navgroup')].find(d => d.textContent.includes('Community')).open = true;
    }""")  # both in one task: both toggle events come after
    page.evaluate("() => new Promise(resolve => setTimeout(resolve, 50))")  # let the toggle events run
    expect(community.get_by_role("link", name="Guilds")).to_be_visible()


def test_the_menus_work_by_keyboard_on_a_wide_screen(app, make_member, page):
    moderator = make_member(role="moderator")
    sign_in(page, moderator)  # the default 1280 px wide screen
    community, rewards = group(page, "Community"), group(page, "Rewards")
    community.locator(":scope > summary").focus()
    page.keyboard.press("Enter")
    expect(community.locator(".navgroup__panel")).to_be_visible()
    for name in GROUPS["Community"]:
        page.keyboard.press("Tab")
        expect(community.get_by_role("link", name=name)).to_be_focused()
    page.keyboard.press("Tab")  # on to the next menu's button; opening it closes the first
    expect(rewards.locator(":scope > summary")).to_be_focused()
    page.keyboard.press("Enter")
    expect(rewards.locator(".navgroup__panel")).to_be_visible()
    expect(community.locator(".navgroup__panel")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(rewards.locator(".navgroup__panel")).to_be_hidden()
    expect(rewards.locator(":scope > summary")).to_be_focused()

    moderation = group(page, "Moderation")
    summary = moderation.locator(":scope > summary")
    summary.focus()
    page.keyboard.press("Enter")
    panel = moderation.locator(".navgroup__panel")
    expect(panel).to_be_visible()
    page.keyboard.press("Tab")
    expect(panel.get_by_role("link", name="Campaigns")).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(summary).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(panel.get_by_role("link").count()):  # down to the last link, Conversions and slashes
        page.keyboard.press("Tab")
    expect(panel.get_by_role("link", name="Conversions and slashes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/economy/moderation$"))
    expect(page.locator(".navgroup a[aria-current=page]")).to_have_text("Conversions and slashes")
