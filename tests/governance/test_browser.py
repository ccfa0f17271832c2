"""The governance journey in real chromium: a member proposes doubling a task type's reward rate, votes
for it and watches the live tally move as another member votes against; the vote passes, waits out its
timelock and applies itself through the parameter store (the test moves the clock: the services take
`now`), and the member's next answer earns the new rate."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.governance.conftest import TOKEN, give
from tests.labeling.conftest import make_pack, open_pack

pytestmark = pytest.mark.browser


def sign_in(page, member) -> None:
    page.goto("/login")
    page.fill("input[name=login]", member.username)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")


def test_a_reward_rate_change_is_proposed_voted_passed_applied_after_its_timelock_and_paid(app, page, make_member, tmp_path):
    from sapien.economy import parameters as store
    from sapien.extensions import db
    from sapien.governance import proposals, voting
    from sapien.governance.models import Proposal

    ana, bob = make_member("ana_voter"), make_member("bob_voter")
    with app.test_request_context():
        give(ana.id, xp=300, stake=2 * TOKEN, reputation=600)  # power 2,200
        give(bob.id, stake=TOKEN, reputation=500)  # power 1,000
        open_pack(make_pack(tmp_path, items=3, name="Governed sentiment", reward_points=10, reward_xp=4))

    sign_in(page, ana)
    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".navgroup > summary", has_text="Community").click()  # governance sits in the Community menu
    nav.get_by_role("link", name="Governance").click()
    expect(page.get_by_role("heading", name="Governance", exact=True)).to_be_visible()
    page.get_by_role("link", name="New proposal").click()
    page.get_by_label("Title").fill("Double the text classification rate")
    page.get_by_label("Setting", exact=True).select_option("reward.rate.text_classification")
    page.get_by_label("New value").fill("20000")
    page.get_by_label("Why?").fill("Text classification is underpaid.")
    page.get_by_role("button", name="Open the vote").click()
    expect(page.locator(".flashes, #flashes")).to_contain_text("Your proposal is open for voting.")
    expect(page.locator("#new-value")).to_have_text("20000")

    page.get_by_role("button", name="For", exact=True).click()
    expect(page.locator("#ballot")).to_contain_text("You voted: For.")
    expect(page.locator("#tally-for")).to_contain_text("2,200")

    # Bob votes against elsewhere: the open page's live tally picks it up by itself.
    with app.test_request_context():
        proposal = db.session.scalars(db.select(Proposal)).one()
        proposal_id, closes_at = proposal.id, proposal.closes_at
        voting.cast_vote(bob.id, proposal_id, "against", proposal.opened_at)
    expect(page.locator("#tally-against")).to_contain_text("1,000")
    expect(page.locator("#tally-verdict")).to_contain_text("Passing if it closed now")

    # The period ends: the count passes it and queues it behind its timelock.
    with app.test_request_context():
        executable_at = proposals.close_proposal(proposal_id, closes_at).executable_at
        with pytest.raises(proposals.TimelockNotOver):
            proposals.execute_proposal(proposal_id, closes_at)
    page.reload()
    expect(page.locator(".pagehead .pill")).to_have_text("Passed · in timelock")
    expect(page.locator("#tally")).to_contain_text("Result")

    with app.test_request_context():
        assert proposals.execute_proposal(proposal_id, executable_at).status == "executed"
        history = store.parameter_history("reward.rate.text_classification")
        assert [change.proposal_id for change in history] == [proposal_id]
    page.reload()
    expect(page.locator(".pagehead .pill")).to_have_text("Applied")
    page.get_by_role("link", name="All proposals").click()
    page.get_by_role("link", name="Passed").click()
    expect(page.locator("#proposal-list")).to_contain_text("Double the text classification rate")

    # Ana's next answer earns twice the pack's 10 points.
    page.goto("/work")
    card = page.locator(".packcard").filter(has=page.get_by_role("link", name="Governed sentiment", exact=True))
    card.get_by_role("link", name="Start").click()
    expect(page.locator("#answer-form")).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator(".feedback__earned")).to_contain_text("+20 pending")
