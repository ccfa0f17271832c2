"""Issue 13's check in real chromium: the seeded ring of cheats is flagged, a moderator reviews its cluster
and bans it with the damage undone (the points it earned reversed, the labels it made withdrawn and its items
re-queued), and a banned member's appeal reaches a second moderator, who overturns the ban."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")


def test_the_ring_is_flagged_banned_undone_and_an_appeal_reaches_a_second_moderator(app, page, second_page, make_member, tmp_path):
    from sqlalchemy import select

    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.moderation.safety.demo_ring import RING_PREFIX, seed_ring
    from sapien.moderation.safety.scan import run_scan
    from sapien.quality.models import VerifiedLabel
    from tests.labeling.conftest import make_pack

    first = make_member("trust_mod", role="moderator")
    second = make_member("trust_mod_two", role="moderator")
    with app.test_request_context():
        pack = make_pack(tmp_path, items=8, gold=5, labels_per_item=3, max_labels_per_item=3)
        ring = seed_ring(utcnow(), pack_id=pack.id)
        run_scan(utcnow())
        earned = sum(ledger.balance(user_id, "points") for user_id in ring)
        ring_labels = list(db.session.scalars(select(VerifiedLabel.item_id).where(VerifiedLabel.pack_id == pack.id)))
        db.session.remove()
    assert earned > 0 and ring_labels

    sign_in(page, first.username, first.password)
    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".navgroup > summary", has_text="Moderation").click()
    nav.get_by_role("link", name="Fraud flags").click()
    queue = page.locator("table.flagqueue")
    expect(queue).to_contain_text(f"@{RING_PREFIX}1")
    expect(queue.locator("tbody tr", has_text=f"@{RING_PREFIX}1")).to_contain_text("Fraud model")
    queue.locator("tbody tr", has_text=f"@{RING_PREFIX}1").get_by_role("link", name="Review").click()

    # The cluster: five accounts and what they share.
    expect(page.get_by_role("heading", name="A cluster of 5 accounts")).to_be_visible()
    expect(page.locator(".sharedlist")).to_contain_text("Device")
    expect(page.locator(".sharedlist")).to_contain_text("203.0.113.0/24")
    expect(page.locator("tr.trust-member")).to_have_count(5)

    # Ban the whole cluster and undo the damage in the same confirmed action.
    page.get_by_label("Decision", exact=True).select_option("ban")
    page.get_by_label("Reason", exact=True).fill("A ring of accounts agreeing on wrong answers in under a second.")
    page.get_by_label("Undo the damage now", exact=False).check()
    page.get_by_label("I confirm: undo the damage").check()
    page.get_by_role("button", name="Decide").click()
    expect(page.locator(".toast", has_text=f"Damage undone: {earned} points reversed")).to_be_visible()
    expect(page.locator(".pill--success", has_text="Undone")).to_have_count(5)

    with app.app_context():
        assert all(ledger.balance(user_id, "points") == 0 for user_id in ring)
        assert not list(db.session.scalars(select(VerifiedLabel.item_id).where(VerifiedLabel.item_id.in_(ring_labels))))
        db.session.remove()

    # A banned member cannot sign in, but appeals from the sign-in page.
    banned = second_page()
    banned.goto("/login")
    banned.get_by_role("link", name="Appeal the ban").click()
    expect(banned.get_by_role("heading", name="Appeal a ban")).to_be_visible()
    banned.get_by_label("Username or email").fill(f"{RING_PREFIX}1")
    banned.get_by_label("Password").fill("quick-click-ring-2026")
    banned.get_by_label("Why should the decision change?").fill("My little brother used my laptop. I will secure it.")
    banned.get_by_role("button", name="Send my appeal").click()
    expect(banned.locator(".toast", has_text="Your appeal is sent")).to_be_visible()
    banned.context.close()

    # The deciding moderator does not hear it; the second one does, and overturns the ban.
    page.goto("/moderation/appeals")
    expect(page.get_by_role("heading", name="Moderation appeals")).to_be_visible()
    expect(page.locator(".empty", has_text="No open appeals.")).to_be_visible()
    other = second_page()
    sign_in(other, second.username, second.password)
    nav = other.get_by_role("navigation", name="Main")
    nav.locator(".navgroup > summary", has_text="Moderation").click()
    nav.get_by_role("link", name="Moderation appeals").click()
    appeal = other.locator("article.appeal", has_text=f"@{RING_PREFIX}1 appeals")
    expect(appeal).to_contain_text("My little brother")
    appeal.get_by_label("Decision").select_option("overturn")
    appeal.get_by_label("Reason").fill("Believable; one more chance.")
    appeal.get_by_role("button", name="Decide").click()
    expect(other.locator(".toast", has_text="The decision is overturned.")).to_be_visible()
    other.context.close()
    with app.app_context():
        from sapien.accounts import service as accounts

        assert not accounts.get_by_username(f"{RING_PREFIX}1").is_banned
        db.session.remove()
