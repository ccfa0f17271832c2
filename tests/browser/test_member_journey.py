"""A new member signs up, lands on the dashboard, signs out and back in, and finds the same state."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_sign_up_dashboard_logout_login_same_state(page, app):
    page.goto("/")
    page.get_by_role("link", name="Join Sapien").first.click()
    page.get_by_label("Username").fill("amara_okafor")
    page.get_by_label("Email").fill("amara@example.org")
    page.get_by_label("Password", exact=True).fill("a strong passphrase")
    page.get_by_label("Repeat password").fill("a strong passphrase")
    page.get_by_label("Country").select_option("NG")
    page.get_by_label("Time zone").select_option("Africa/Lagos")
    page.get_by_role("button", name="Create my account").click()

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", name="Hello, amara_okafor")).to_be_visible()
    expect(page.get_by_text("Welcome to Sapien, amara_okafor!")).to_be_visible()
    expect(page.locator("#statusbar")).to_contain_text("Lv 1")

    # Some progress arrives (as labeling will credit it), then the member leaves and comes back.
    from datetime import UTC, datetime

    from sapien.accounts.service import get_by_username
    from sapien.ledger import service as ledger

    with app.app_context():
        member_id = get_by_username("amara_okafor").id
        ledger.credit(member_id, "xp", 120, kind="labeling:text_classification", key="journey:xp", now=datetime.now(UTC))
    page.reload()
    expect(page.locator("#statusbar")).to_contain_text("Lv 2")
    before = page.locator("#dashboard-xp").inner_text()

    page.get_by_label("Account menu").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    page.goto("/dashboard")  # signed out: sent to the login page
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username or email").fill("amara@example.org")
    page.get_by_label("Password").fill("a strong passphrase")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("#dashboard-xp")).to_have_text(before)
    expect(page.locator("#statusbar")).to_contain_text("Lv 2")


def test_bad_signup_shows_field_errors_in_place(page):
    page.goto("/signup")
    page.get_by_label("Username").fill("no spaces allowed")
    page.get_by_label("Email").fill("amara@example.org")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat password").fill("short")
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_text("Use letters, digits, dots, dashes and underscores only.")).to_be_visible()
    expect(page.get_by_text("Passwords are 10 to 128 characters long.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/signup$"))
    expect(page.get_by_label("Email")).to_have_value("amara@example.org")  # nothing typed is lost


def test_keyboard_only_sign_in(page, make_member):
    make_member("keyboard_user")
    page.goto("/login")
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Username or email").focus()
    page.keyboard.type("keyboard_user")
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
