"""In a real browser: a member converts points, stakes, sees the multiplier on the next reward, and gets a
revenue-share statement after a payment is recorded."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sapien.i18n import TOKEN_UNIT
from tests.labeling.conftest import make_pack

pytestmark = pytest.mark.browser


def test_a_member_converts_stakes_and_sees_the_multiplier_on_the_next_reward(app, make_member, page, tmp_path):
    from sapien.database import utcnow
    from sapien.economy import revenue
    from sapien.labeling import leases, submissions
    from sapien.ledger import service as ledger
    from tests.conftest import verify_and_settle

    member = make_member()
    with app.test_request_context():
        ledger.credit(member.id, "points", 5000, kind="test", key="journey:points", now=utcnow())
        pack = make_pack(tmp_path, items=2, labels_per_item=1, reward_points=100, reward_xp=10)
        pack_id, campaign_id = pack.id, pack.campaign_id

    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".navgroup > summary", has_text="Rewards").click()  # the token pages sit in the Rewards menu
    nav.get_by_role("link", name="Tokens & stake").click()
    expect(page.get_by_test_id("expected-conversion")).to_contain_text("5,000")
    page.get_by_role("button", name="Convert now").click()
    expect(page.locator("#flashes")).to_contain_text("Converted 5,000 points into 0.5 tokens (0.1 staked)")
    expect(page.get_by_test_id("token-balance")).to_have_text("0.4")
    expect(page.get_by_test_id("multiplier")).to_have_text("×1.05")  # the auto-staked tenth reaches the first tier

    page.get_by_label("Tokens to stake").fill("0.3")
    page.get_by_label("Lock period").select_option("3")
    page.get_by_role("button", name="Stake tokens").click()
    expect(page.locator("#flashes")).to_contain_text("Staked 0.3 tokens for 3 months")
    expect(page.get_by_test_id("multiplier")).to_have_text("×1.15")

    # The next reward: an answer verified and paid by the settlement job.
    with app.test_request_context():
        lease = leases.lease_next_item(member.id, pack_id, utcnow())
        submissions.submit_answer(member.id, lease.id, {"labels": ["pos"]}, now=utcnow())
        verify_and_settle(pack_id=pack_id)
        revenue.record_campaign_payment(campaign_id, TOKEN_UNIT // 10, external_ref="INV-JOURNEY", actor_id=None, now=utcnow())
    page.goto("/work/history")
    row = page.locator("tr[data-reward=paid]").first
    expect(row).to_contain_text("+115 points")
    expect(row.locator(".pill")).to_have_text("×1.15")

    page.goto("/economy/wallet")
    expect(page.get_by_test_id("statements")).to_contain_text("Contributor")
    expect(page.get_by_test_id("statements")).to_contain_text("+0.07")  # 70 % of 0.1 token, the only contributor
    page.close()
