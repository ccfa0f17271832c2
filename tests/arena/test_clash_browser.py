"""Two guild leaders in real browsers: one challenges the other's guild, the other accepts, six members take
their places (two in the browsers, four through the service), the match is played and both see the team
breakdown."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.arena.clash_helpers import two_guilds
from tests.arena.conftest import play, verified_pack

pytestmark = pytest.mark.browser


def sign_in(page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {username}")).to_be_visible()


def test_two_guild_leaders_set_up_a_clash_and_see_the_team_breakdown(app, page, second_page, tmp_path, config):
    from sapien.accounts.models import User
    from sapien.arena import clash, matches
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.guilds.models import Guild

    config(ARENA_ITEMS=4, ARENA_MIN_MS_PER_ITEM=0, ARENA_MATCH_SECONDS=300)
    with app.test_request_context():
        verified_pack(tmp_path)
        guilds = two_guilds(config, prefix="w")
        red_name, blue_name = db.session.get(Guild, guilds.red).name, db.session.get(Guild, guilds.blue).name
        red_leader, blue_leader = (
            db.session.get(User, guilds.red_members[0]).username,
            db.session.get(User, guilds.blue_members[0]).username,
        )
    blue_page = second_page()
    sign_in(page, red_leader)
    sign_in(blue_page, blue_leader)

    # Red's leader goes from the arena lobby to the guild clash page and challenges Blue.
    page.goto("/arena/")
    page.get_by_test_id("guild-clash").click()
    page.get_by_label("Guild to challenge").fill(blue_name)
    page.get_by_role("button", name="Send the challenge").click()
    expect(page.get_by_role("heading", name=f"Waiting for {blue_name} to accept")).to_be_visible()
    clash_url = page.url

    # Blue's leader sees the challenge on their guild's page and accepts it, then takes a place.
    blue_page.goto(f"/guilds/{guilds.blue_slug}")
    blue_page.get_by_test_id("guild-clashes").get_by_role("link", name=f"{red_name} vs {blue_name}").click()
    blue_page.get_by_test_id("accept-clash").click()
    blue_page.get_by_role("button", name=f"Take a place for {blue_name}").click()
    expect(blue_page.get_by_test_id("clash-side").nth(1).get_by_test_id("clash-place")).to_have_count(1)
    page.goto(clash_url)
    page.get_by_role("button", name=f"Take a place for {red_name}").click()
    expect(page.get_by_test_id("clash-side").nth(0).get_by_test_id("clash-place")).to_have_count(1)

    # Four more members join through the service; the sixth place starts the match, and they play it.
    with app.test_request_context():
        row_id = int(clash_url.rstrip("/").rsplit("/", 1)[1])
        for user_id in guilds.red_members[1:3] + guilds.blue_members[1:3]:
            joined = clash.join(row_id, user_id, utcnow())
        match = matches.get_match(joined.match_id)
        planted, truth, item_ids = dict(match.planted), dict(match.truth), list(match.item_ids)
        for user_id in guilds.red_members[1:3] + guilds.blue_members[1:3]:
            play(match, user_id, perfect=user_id in guilds.red_members, now=utcnow(), step_seconds=0.5)

    # Red's leader finds every planted error; Blue's keeps every label. Progress shows counts, never answers.
    page.reload()
    for index, item_id in enumerate(item_ids):
        card = page.get_by_test_id("item").nth(index)
        if str(item_id) in planted:
            card.get_by_label("The right label").select_option(truth[str(item_id)])
            card.get_by_role("button", name="Wrong label!").click()
        else:
            card.get_by_role("button", name="Looks right").click()
        if index < len(item_ids) - 1:
            expect(page.get_by_test_id("item").nth(index)).to_contain_text("You")
    expect(page.get_by_role("heading", name="Your run is in")).to_be_visible()
    blue_page.reload()
    expect(blue_page.get_by_test_id("clash-progress").filter(has_text=red_leader)).to_contain_text(
        f"{len(item_ids)}/{len(item_ids)}"
    )
    for index in range(len(item_ids)):
        blue_page.get_by_test_id("item").nth(index).get_by_role("button", name="Looks right").click()
        if index < len(item_ids) - 1:
            expect(blue_page.get_by_test_id("item").nth(index)).to_contain_text("You kept it")

    # Both see the result: Red wins, with each team's sum and each player's run.
    for one in (blue_page, page):  # red's page follows its poll to the results
        expect(one.get_by_test_id("clash-result")).to_contain_text(f"{red_name} wins the clash!")
        expect(one.get_by_test_id("clash-team")).to_have_count(2)
        expect(one.get_by_test_id("clash-player")).to_have_count(6)
    expect(page.get_by_test_id("team-points").first).to_have_text(str(3 * len(planted)))
    expect(page.get_by_test_id("breakdown-row").filter(has_text="planted error")).to_have_count(len(planted))
    page.goto(f"/guilds/{guilds.red_slug}")
    expect(page.get_by_test_id("clash-record")).to_contain_text("1 wins, 0 draws, 0 losses")
