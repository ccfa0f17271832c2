"""A guild leader's journey in real chromium: boards filter without reloads, the dashboard sorts and exports."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.browser


def test_leader_filters_boards_and_exports_the_member_ranking(app, page):
    from sapien.accounts import service as accounts
    from sapien.guilds import founding, membership
    from sapien.ledger import service as ledger

    now = datetime.now(UTC)
    with app.test_request_context():
        ids = {}
        for name in ("leader", "ana", "ben"):
            ids[name] = accounts.sign_up(accounts.SignUp(username=name, email=f"{name}@example.org", password="correct horse battery"), now=now).id
        ledger.credit(ids["leader"], "xp", 300, kind="labeling:image_classification", key="b:1", now=now)
        ledger.credit(ids["ana"], "xp", 900, kind="labeling:text_classification", key="b:2", now=now)
        ledger.credit(ids["ben"], "xp", 40, kind="labeling:image_classification", key="b:3", now=now)
        guild = founding.create_guild(ids["leader"], founding.GuildDraft(name="Night Owls"), now)
        membership.join(ids["ana"], guild.id, now)
        membership.join(ids["ben"], guild.id, now)

    page.goto("/login")
    page.fill("input[name=login]", "leader")
    page.fill("input[name=password]", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard")

    page.click("nav.mainnav >> text=Leaderboards")
    page.locator("#board-title", has_text="All time").wait_for()
    # The nav click may have been a full load (htmx still loading): htmx hears the filter's change only once
    # the page has loaded and it has processed the form.
    page.wait_for_load_state("load")
    page.select_option("#lb-task", "text_classification")
    page.locator("#board-title", has_text="text classification").wait_for()
    assert page.locator("#board tbody tr").count() == 1
    assert "task=text_classification" in page.url  # pushed into the history without a reload

    page.goto("/guilds/night-owls/dashboard")
    rows = page.locator("#dashboard-table tbody tr")
    assert rows.first.inner_text().split("\t")[1].strip() == "ana"
    page.click('#dashboard-table a.sortlink >> text="XP ▼"')  # toggles to ascending
    page.wait_for_url("**dir=asc**")
    page.locator("#dashboard-table tbody tr").first.filter(has_text="ben").wait_for()
    with page.expect_download() as download:
        page.click("#dashboard-csv")
    with open(download.value.path(), encoding="utf-8") as handle:
        exported = list(csv.reader(io.StringIO(handle.read())))
    assert [row[1] for row in exported[1:]] == ["ben", "leader", "ana"]  # the export follows the sort on screen
    page.select_option("#dash-role", "member")  # filtering keeps the ascending sort
    page.locator("#dashboard-table", has_text="2 members shown").wait_for()
    assert "dir=asc" in page.url and page.locator("#dashboard-table tbody tr").first.inner_text().split("\t")[1].strip() == "ben"


def _leader_with_members(app):
    from sapien.accounts import service as accounts
    from sapien.guilds import founding, membership
    from sapien.ledger import service as ledger

    now = datetime.now(UTC)
    with app.test_request_context():
        ids = {}
        for name in ("leader", "ana", "ben"):
            ids[name] = accounts.sign_up(accounts.SignUp(username=name, email=f"{name}@example.org", password="correct horse battery"), now=now).id
        ledger.credit(ids["leader"], "xp", 300, kind="labeling:image_classification", key="c:1", now=now)
        guild = founding.create_guild(ids["leader"], founding.GuildDraft(name="Night Owls"), now)
        membership.join(ids["ana"], guild.id, now)
        membership.join(ids["ben"], guild.id, now)
    return ids


def _sign_in(page, username: str) -> None:
    page.goto("/login")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("form button[type=submit]")
    page.wait_for_url("**/dashboard")


def _guild_of(app, user_id: int):
    from sapien.guilds import membership

    with app.test_request_context():
        row = membership.membership_of(user_id)
        return row.role if row else None


def _row_menu(page, username: str):
    return page.locator("tr", has=page.get_by_role("link", name=username, exact=True)).locator("details.rowmenu")


def test_leader_kicks_and_hands_over_from_one_menu_per_member_by_keyboard(app, page):
    from playwright.sync_api import expect

    ids = _leader_with_members(app)
    _sign_in(page, "leader")
    page.goto("/guilds/night-owls")
    page.wait_for_load_state("load")
    menu = _row_menu(page, "ana")
    expect(menu.locator("summary").first).to_have_accessible_name("Manage ana")
    menu.locator("summary").first.focus()
    page.keyboard.press("Enter")
    kick = menu.locator("details.confirm").filter(has=page.locator("summary", has_text="Kick"))
    expect(kick.get_by_role("button", name="Yes, kick ana")).to_be_hidden()  # one more step before it acts
    kick.locator("summary").focus()  # Tab from the menu's button would pass "Make officer" first
    page.keyboard.press("Enter")
    reason = kick.get_by_label("Reason (kept in the audit log)")
    expect(reason).to_be_focused()
    page.keyboard.type("copied answers")
    page.keyboard.press("Tab")
    expect(kick.get_by_role("button", name="Yes, kick ana")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("The member was removed from the guild.")).to_be_visible()
    assert _guild_of(app, ids["ana"]) is None

    # Escape closes a menu without acting and gives the focus back to its button.
    menu = _row_menu(page, "ben")
    summary = menu.locator("summary").first
    summary.click()
    menu.locator("summary", has_text="Hand over leadership").click()
    expect(menu.get_by_role("button", name="Yes, hand over to ben")).to_be_visible()
    page.keyboard.press("Escape")
    expect(summary).to_be_focused()
    expect(menu.get_by_role("button", name="Yes, hand over to ben")).to_be_hidden()
    assert _guild_of(app, ids["ben"]) == "member"
    summary.click()
    menu.get_by_role("button", name="Yes, hand over to ben").click()
    expect(page.get_by_text("You handed over the leadership.")).to_be_visible()
    assert _guild_of(app, ids["ben"]) == "leader" and _guild_of(app, ids["leader"]) == "officer"


def test_without_javascript_leaving_still_asks_first(app, browser, live_server):
    from playwright.sync_api import expect

    ids = _leader_with_members(app)

    def page_without_script(username: str):
        context = browser.new_context(base_url=live_server, java_script_enabled=False, locale="en-US")
        page = context.new_page()
        _sign_in(page, username)
        return page

    page = page_without_script("ana")
    page.goto("/guilds/night-owls")
    page.locator("summary", has_text="Leave guild").click()
    page.get_by_role("button", name="Yes, leave Night Owls").click()
    expect(page).to_have_url(re.compile(r"/guilds/$"))
    assert _guild_of(app, ids["ana"]) is None
    # The page of its own asks the same, for a link followed without the guild page.
    page = page_without_script("ben")
    page.goto("/guilds/leave")
    expect(page.get_by_role("heading", name="Leave Night Owls?")).to_be_visible()
    page.get_by_role("button", name="Yes, leave Night Owls").click()
    expect(page).to_have_url(re.compile(r"/guilds/$"))
    assert _guild_of(app, ids["ben"]) is None
