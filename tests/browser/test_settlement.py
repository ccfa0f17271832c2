"""In a real browser: an answer shows "+N pending" at once, the nav carries the pending amount, and once
the crowd has verified the item and the settlement job has paid it, the nav and the history show it paid."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import decide_items
from tests.labeling.conftest import make_pack

pytestmark = pytest.mark.browser


def test_an_answer_is_pending_then_paid_once_the_crowd_verifies_it(app, make_member, page, tmp_path):
    from sapien.database import utcnow
    from sapien.labeling import leases, submissions

    app.config["SETTLEMENT_POLL_SECONDS"] = 1  # the nav's pending figure refreshes itself every second
    with app.test_request_context():
        pack = make_pack(tmp_path, items=1, labels_per_item=3, max_labels_per_item=3, reward_points=20, reward_xp=10)
        slug, pack_id = pack.slug, pack.id
    member, others = make_member(), [make_member(), make_member()]

    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.goto(f"/packs/{slug}/work")
    page.wait_for_load_state("load")
    expect(page.locator("#answer-form")).to_be_visible()
    page.keyboard.press("1")  # the first label, "pos"
    expect(page.get_by_role("radio", name="pos")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#feedback-pending")).to_contain_text("+20 pending")
    expect(page.locator("#nav-pending")).to_have_text("+20 pending")
    expect(page.locator("#nav-points")).to_have_text("0")

    # Two more members give the same label: the item is decided with the third answer; the worker's job pays.
    with app.app_context():
        for other in others:
            lease = leases.lease_next_item(other.id, pack_id, utcnow())
            submissions.submit_answer(other.id, lease.id, {"labels": ["pos"]}, now=utcnow())
        from jobs.labeling import settle_rewards

        assert decide_items() == 3  # the worker's jobs, run here: the decision verifies, the settlement pays
        assert settle_rewards() == 3
        assert settle_rewards() == 0

    # The nav polls while something is pending: it now shows the points paid and nothing pending.
    expect(page.locator("#nav-pending")).to_have_count(0)
    expect(page.locator("#nav-points")).to_have_text("20")
    page.goto("/work/history")
    row = page.locator("#history tbody tr").first
    expect(row).to_have_attribute("data-reward", "paid")
    expect(row).to_contain_text("Paid")
    expect(row).to_contain_text("+20 points · 10 XP")
    page.goto("/notifications")
    expect(page.locator("#notifications")).to_contain_text("Your answer was verified: +20 points")
