"""A guild leader's journey in real chromium: boards filter without reloads, the dashboard sorts and exports."""

from __future__ import annotations

import csv
import io
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
