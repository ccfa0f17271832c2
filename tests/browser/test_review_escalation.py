"""Issue 10 in real chromium: an answer no reviewer took in time waits in the moderators' queue with its
age; a moderator reaches it from the nav, takes it and accepts it, and the member sees it accepted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from sapien.database import utcnow
from tests.browser.test_game import sign_in
from tests.quality.conftest import answer, items_of, label, make_pack

pytestmark = pytest.mark.browser


def test_a_moderator_takes_an_escalated_review_and_accepts_it(app, browser, live_server, page, make_member, tmp_path):
    author, moderator = make_member(), make_member(role="moderator")
    make_member(role="reviewer")  # a reviewer who never came: the answer escalates by time
    with app.test_request_context():
        pack = make_pack(tmp_path, items=1, review_rate_percent=100, name="Stuck sentiment")
        answer(author.id, items_of(pack.id)[0].id, label("pos"), now=utcnow() - timedelta(minutes=25))

    sign_in(page, moderator)
    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".navgroup > summary", has_text="Moderation").click()  # the moderators' pages sit in the Moderation menu
    nav.get_by_role("link", name="Reviews to take").click()
    expect(page.get_by_role("heading", name="Reviews to take")).to_be_visible()
    page.wait_for_load_state("load")
    row = page.locator("table.escalated tbody tr", has_text="Stuck sentiment")
    expect(row.locator(".escalated__age")).to_have_text("25 minutes")
    expect(page.locator('[data-stat="escalated"]')).to_have_text("1")
    row.get_by_role("button", name="Take this review").click()

    item = page.locator(".review__item")
    expect(item.get_by_role("heading", name="Check this answer")).to_be_visible()
    expect(row).to_contain_text("Yours, above")
    item.get_by_role("button", name="Accept", exact=True).click()
    expect(page.get_by_text("Accepted. Thank you!")).to_be_visible()
    expect(page.get_by_text("No answer is waiting for a moderator. Reviewers are keeping up.")).to_be_visible()
    expect(page.locator('[data-stat="waiting"]')).to_have_text("0")

    # The member sees the answer accepted in their history: verified, and paid by the next settlement batch.
    member_context = browser.new_context(base_url=live_server, locale="en-US", timezone_id="UTC")
    try:
        member_page = member_context.new_page()
        sign_in(member_page, author)
        member_page.goto("/work/history")
        expect(member_page.locator("#history tbody tr", has_text="Stuck sentiment").locator(".status")).to_have_text("Verified, paying")
    finally:
        member_context.close()
