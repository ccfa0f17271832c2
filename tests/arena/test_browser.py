"""Two real browsers find each other in the queue, play an error hunt live and see the breakdown, their
ratings and the prize move."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.arena.conftest import verified_pack

pytestmark = pytest.mark.browser


def sign_in(page, member) -> None:
    page.goto("/login")
    page.get_by_label("Username or email").fill(member.username)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {member.username}")).to_be_visible()


def test_two_members_meet_in_the_queue_and_play_an_error_hunt_live(app, browser, live_server, page, make_member, tmp_path, config):
    from sapien.arena import matches, prizes
    from sapien.database import utcnow

    config(ARENA_ITEMS=4, ARENA_MIN_MS_PER_ITEM=0, ARENA_MATCH_SECONDS=300)
    alice, bob = make_member("alice"), make_member("bob")
    with app.test_request_context():
        verified_pack(tmp_path)
        prizes.set_pool(prizes.PoolSettings(budget_tokens=10 * prizes.TOKEN_UNIT, prize_tokens=2 * prizes.TOKEN_UNIT, entry_fee_points=0),
                        actor_id=alice.id, now=utcnow())
    bob_context = browser.new_context(base_url=live_server, locale="en-US", timezone_id="UTC")
    bob_page = bob_context.new_page()
    try:
        sign_in(page, alice)
        sign_in(bob_page, bob)
        for one in (page, bob_page):
            one.goto("/arena/")
            expect(one.get_by_test_id("my-rating")).to_contain_text("1000")
        page.get_by_role("button", name="Find an opponent").click()
        expect(page.get_by_role("heading", name="Looking for an opponent…")).to_be_visible()
        bob_page.get_by_role("button", name="Find an opponent").click()
        expect(bob_page.get_by_test_id("timer")).to_be_visible()
        expect(page.get_by_test_id("timer")).to_be_visible()  # alice's waiting page followed the poll to the match
        with app.test_request_context():
            match_id = matches.active_match_id(alice.id)
            match = matches.get_match(match_id)
            planted, truth, item_ids = dict(match.planted), dict(match.truth), list(match.item_ids)

        # Alice finds every planted error; bob watches her progress bar fill, never her answers.
        for index, item_id in enumerate(item_ids):
            card = page.get_by_test_id("item").nth(index)
            if str(item_id) in planted:
                card.get_by_label("The right label").select_option(truth[str(item_id)])
                card.get_by_role("button", name="Wrong label!").click()
                shown = "You flagged it"
            else:
                card.get_by_role("button", name="Looks right").click()
                shown = "You kept it"
            if index < len(item_ids) - 1:  # the last answer ends her run: the cards give way to the wait
                expect(page.get_by_test_id("item").nth(index)).to_contain_text(shown)
        expect(bob_page.get_by_test_id("their-progress")).to_contain_text(f"{len(item_ids)}/{len(item_ids)}")
        expect(page.get_by_role("heading", name="Your run is in")).to_be_visible()

        # Bob keeps every label, so he misses the planted errors.
        for index in range(len(item_ids)):
            bob_page.get_by_test_id("item").nth(index).get_by_role("button", name="Looks right").click()
            if index < len(item_ids) - 1:
                expect(bob_page.get_by_test_id("item").nth(index)).to_contain_text("You kept it")

        expect(bob_page.get_by_test_id("result")).to_contain_text("Defeat")
        expect(page.get_by_test_id("result")).to_contain_text("Victory!")  # alice's poll took her to the results
        expect(page.get_by_test_id("my-score")).to_have_text(str(len(planted)))
        expect(page.get_by_test_id("breakdown-row")).to_have_count(len(item_ids))
        expect(page.get_by_test_id("breakdown-row").filter(has_text="planted error")).to_have_count(len(planted))
        expect(bob_page.get_by_test_id("breakdown-row").filter(has_text="missed")).to_have_count(len(planted))
        expect(page.get_by_test_id("rating-move")).to_contain_text("1000 →")
        expect(page.get_by_test_id("prize")).to_contain_text("+2 tokens")
        page.goto("/arena/")
        expect(page.get_by_test_id("my-rating")).not_to_contain_text("1000")
        bob_page.goto("/arena/")
        expect(bob_page.get_by_role("cell", name="Lost")).to_be_visible()
    finally:
        bob_page.close()
        bob_context.close()
