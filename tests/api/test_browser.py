"""The organization dashboard and the API docs in real chromium: an owner signs in, follows the nav to
their campaigns, makes a key (its secret shown once) that works against the API, and opens the docs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.api.conftest import CAMPAIGN, ApiClient, make_org

pytestmark = pytest.mark.browser


def test_owner_journey(app, page, make_member):
    from sapien.api import orgs
    from sapien.database import utcnow

    owner = make_member("ophelia")
    with app.test_request_context():
        org = make_org("Umbrella")
        orgs.add_member(org.id, "ophelia", role="owner", now=utcnow())
    ApiClient(app.test_client(), org.write_key).post("/api/v1/campaigns", CAMPAIGN)

    page.goto("/login")
    page.get_by_label("Username or email").fill(owner.username)
    page.get_by_label("Password").fill(owner.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.get_by_role("link", name="Organization").click()
    expect(page.get_by_role("heading", name="Umbrella")).to_be_visible()
    expect(page.get_by_role("cell", name=re.compile("Support tickets"))).to_be_visible()

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("laptop")
    page.get_by_label("Scope").select_option("write")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret")
    expect(secret).to_contain_text("sk_")
    token = secret.inner_text()
    assert ApiClient(app.test_client(), token).get("/api/v1/me").get_json()["scope"] == "write"
    page.goto(f"/org/{org.id}/keys")  # the page again: the secret is not shown twice
    expect(page.locator("#new-secret")).to_have_count(0)
    expect(page.get_by_role("cell", name="laptop")).to_be_visible()

    page.get_by_role("link", name="API docs").click()
    expect(page).to_have_url(re.compile(r"/api/v1/docs$"))
    # Swagger UI draws the operations from the generated document.
    expect(page.locator(".opblock-summary-description", has_text="Create a campaign with its first pack")).to_be_visible()
