"""In a real browser, on a fresh demo install: a new member's dashboard leads with "Start labeling" to a
pack they can work on, and the quests page shows the catalogue's daily and weekly quests."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def test_a_new_member_on_a_fresh_demo_starts_labeling_and_finds_quests(app, make_member, page, live_server):
    from playwright.sync_api import expect

    from sapien.database import utcnow
    from sapien.demo import seed_demo

    with app.app_context():
        assert seed_demo(members=5, now=utcnow())
    member = make_member()
    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.wait_for_load_state("load")
    cta = page.locator("#start-labeling")
    expect(cta).to_be_visible()
    expect(page.locator("#dash-quests-title")).to_be_visible()
    expect(page.locator(".dashquests #quest-list")).to_contain_text("Label 20 items today")
    cta.get_by_role("link", name="Start labeling").click()
    page.wait_for_url(re.compile(r".*/packs/[^/]+/work$"))
    expect(page.locator("#answer-form, .work")).not_to_have_count(0)

    page.goto("/quests")
    quest_list = page.locator("#quest-list")
    expect(quest_list).to_contain_text("Label 20 items today")
    expect(quest_list).to_contain_text("Label 150 items this week")
    expect(quest_list.locator(".quest--daily")).to_have_count(3)
    expect(quest_list.locator(".quest--weekly")).not_to_have_count(0)
