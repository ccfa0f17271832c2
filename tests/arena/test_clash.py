"""Guild clash: challenge, accept, three a side, the team result on the guild boards, and every refusal."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.arena.clash_helpers import SignedIn, ready_clash, two_guilds
from tests.arena.conftest import NOW, members, play, verified_pack

HX = {"HX-Request": "true"}


def _quest(objective: str, target: int) -> int:
    from sapien.progression import quests

    return quests.create_quest(
        quests.QuestDefinition(
            title=f"{objective} {target}",
            period="weekly",
            objective=objective,
            target=target,
            starts_at=NOW - timedelta(days=1),
            ends_at=NOW + timedelta(days=6),
            reward_xp=10,
        ),
        actor_id=None,
        now=NOW,
    ).id


def _progress(user_id: int, quest_id: int) -> int:
    from sqlalchemy import select

    from sapien.extensions import db
    from sapien.progression.models import QuestProgress

    return (
        db.session.scalar(
            select(QuestProgress.progress).where(QuestProgress.user_id == user_id, QuestProgress.quest_id == quest_id)
        )
        or 0
    )


def test_a_clash_is_won_by_the_team_sum_and_shows_on_the_boards_quests_badges_and_ledger(ctx, tmp_path, config, app):
    from sapien.accounts.models import User
    from sapien.arena import clash, clash_board, matches, prizes
    from sapien.arena.models import ArenaRating
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.notifications.service import recent
    from sapien.progression.awards import member_badges

    verified_pack(tmp_path, items=24)
    guilds = two_guilds(config)
    prizes.set_pool(
        prizes.PoolSettings(
            budget_tokens=9 * prizes.TOKEN_UNIT, prize_tokens=3 * prizes.TOKEN_UNIT, entry_fee_points=0
        ),
        actor_id=guilds.red_members[0],
        now=NOW,
    )
    plays, wins = _quest("arena_matches", 1), _quest("arena_wins", 1)
    row = ready_clash(guilds)
    match = matches.get_match(row.match_id)
    assert row.status == "playing" and match.mode == "guild_clash" and len(match.item_ids) == 6
    # Blue's managers heard of the challenge; everyone in both guilds of the acceptance; the six of the start.
    heard = {
        user_id: {notice.kind for notice in recent(user_id) if notice.kind.startswith("clash_")}
        for user_id in guilds.blue_members + guilds.red_members
    }
    assert heard[guilds.blue_members[1]] == {"clash_challenged", "clash_accepted", "clash_started"}
    assert heard[guilds.blue_members[3]] == {"clash_accepted"} and heard[guilds.red_members[0]] == {
        "clash_accepted",
        "clash_started",
    }
    red, blue = guilds.red_members[:3], guilds.blue_members[:3]
    from sapien.leaderboards.reading import guild_totals

    boards_before = guild_totals([guilds.red, guilds.blue])
    # Red: two perfect hunters and one who misses everything; Blue: one perfect, two who miss with a false alarm.
    for user_id, perfect, alarm in [
        (red[0], True, False),
        (red[1], True, False),
        (red[2], False, False),
        (blue[0], True, False),
        (blue[1], False, True),
        (blue[2], False, True),
    ]:
        play(match, user_id, perfect=perfect, false_alarm=alarm, now=NOW)

    row = clash.get_clash(row.id)
    planted = len(match.planted)
    assert row.status == "finished" and row.winner_guild_id == guilds.red
    assert (row.challenger_points, row.opponent_points) == (2 * planted, planted - 2)
    # Team ratings in their own mode: every winner rose, every loser fell.
    for user_id in red + blue:
        rating = db.session.get(ArenaRating, (user_id, "guild_clash", match.season_id))
        assert rating.matches == 1 and rating.wins == (1 if user_id in red else 0)
        assert (rating.mu > 25) == (user_id in red)
    # The prize for the win is shared by the three winners, each paid once under their own key.
    assert [ledger.balance(user_id, "token") for user_id in red] == [prizes.TOKEN_UNIT] * 3
    assert all(ledger.balance(user_id, "token") == 0 for user_id in blue)
    assert matches.finish(match.id, NOW + timedelta(minutes=5)) is False
    # The team's points feed the guild boards: 10 XP a point to each player who scored (a false alarm's
    # negative score earns nothing).
    boards_after = guild_totals([guilds.red, guilds.blue])
    assert boards_after[guilds.red] - boards_before[guilds.red] == 10 * 2 * planted
    assert boards_after[guilds.blue] - boards_before[guilds.blue] == 10 * planted
    assert ledger.balance(red[2], "xp") == 0 and ledger.balance(red[0], "xp") == 10 * planted
    # Quests and badges heard the match: all six played, only Red won.
    assert [_progress(user_id, plays) for user_id in red + blue] == [1] * 6
    assert [_progress(user_id, wins) for user_id in red + blue] == [1, 1, 1, 0, 0, 0]
    assert "arena-victor" in {held.badge.slug for held in member_badges(red[2])}
    assert "arena-victor" not in {held.badge.slug for held in member_badges(blue[0])}
    # The guild clash board and the guild page show the result.
    board = clash_board.guild_board()
    assert [(line.guild_id, line.wins, line.losses, line.points) for line in board] == [
        (guilds.red, 1, 0, 2 * planted),
        (guilds.blue, 0, 1, planted - 2),
    ]
    viewer = SignedIn(app, blue[0])
    assert "1 wins, 0 draws, 0 losses" in viewer.client.get(f"/guilds/{guilds.red_slug}").get_data(as_text=True)
    # The team ratings have their own tab on the arena leaderboard.
    ratings_page = viewer.client.get("/arena/leaderboard?mode=guild_clash").get_data(as_text=True)
    assert all(f">{db.session.get(User, user_id).username}</a>" in ratings_page for user_id in red + blue)


def test_the_breakdown_shows_each_player_and_each_team_and_live_shows_counts_only(app, tmp_path, config):
    from sapien.arena import matches
    from sapien.database import utcnow

    now = utcnow()
    with app.test_request_context():
        verified_pack(tmp_path, items=24)
        guilds = two_guilds(config, prefix="v")
        row = ready_clash(guilds, now)
        match = matches.get_match(row.match_id)
        clash_id, item_ids, shown = row.id, list(match.item_ids), dict(match.shown)
    player = SignedIn(app, guilds.red_members[0])
    assert (
        player.post(f"/arena/clashes/{clash_id}/answer", {"item_id": item_ids[0], "verdict": "ok"}).status_code == 303
    )
    strip = player.client.get(f"/arena/clashes/{clash_id}/live", headers=HX).get_data(as_text=True)
    assert "1/6" in strip and "0/6" in strip and 'data-testid="timer"' in strip and shown[str(item_ids[0])] not in strip
    with app.test_request_context():
        match = matches.get_match(row.match_id)
        for user_id in guilds.red_members[1:3] + guilds.blue_members[:3]:
            play(match, user_id, perfect=True, now=now, step_seconds=2)
        matches.finish(match.id, now + timedelta(minutes=3))
    page = player.client.get(f"/arena/clashes/{clash_id}").get_data(as_text=True)
    assert page.count('data-testid="clash-player"') == 6 and page.count('data-testid="clash-team"') == 2
    assert "wins the clash" in page and page.count('data-testid="breakdown-row"') == 6
    # The arena's own match page sends a clash's players to the clash page.
    assert (
        player.client.get(f"/arena/matches/{row.match_id}").headers["Location"].endswith(f"/arena/clashes/{clash_id}")
    )


def test_bad_requests_are_refused_with_a_clear_message(ctx, tmp_path, config):
    from sapien.arena import clash, matches
    from sapien.arena.errors import ArenaError
    from sapien.guilds import membership

    verified_pack(tmp_path, items=24)
    guilds = two_guilds(config, members_each=5, prefix="b")
    red_leader, blue_leader = guilds.red_members[0], guilds.blue_members[0]
    outsider, busy_a, busy_b = members(3)

    with pytest.raises(ArenaError, match="your own guild"):
        clash.challenge(red_leader, guilds.red, NOW)
    with pytest.raises(ArenaError, match="leader or officers"):
        clash.challenge(guilds.red_members[3], guilds.blue, NOW)
    row = clash.challenge(red_leader, guilds.blue, NOW)
    with pytest.raises(ArenaError, match="already have a clash under way"):
        clash.challenge(blue_leader, guilds.red, NOW)
    with pytest.raises(ArenaError, match="not accepted yet"):
        clash.join(row.id, red_leader, NOW)
    with pytest.raises(ArenaError, match="challenged guild's leader or officers"):
        clash.respond(row.id, red_leader, accept=True, now=NOW)
    clash.respond(row.id, blue_leader, accept=True, now=NOW)

    with pytest.raises(ArenaError, match="Only members of the two guilds"):
        clash.join(row.id, outsider, NOW)
    for user_id in guilds.red_members[:3]:
        clash.join(row.id, user_id, NOW)
    with pytest.raises(ArenaError, match="side is full"):
        clash.join(row.id, guilds.red_members[3], NOW)
    # A member can be in one guild only; one who moves to the other guild keeps their one place, never two.
    moving = guilds.red_members[2]
    membership.set_role(red_leader, guilds.red, guilds.red_members[1], "member", NOW)
    membership.leave(moving, NOW)
    membership.join(moving, guilds.blue, NOW)
    with pytest.raises(ArenaError, match="already have a place in this clash"):
        clash.join(row.id, moving, NOW)
    # A member playing another match cannot take a place.
    membership.join(busy_a, guilds.blue, NOW)
    matches.start_match([busy_a, busy_b], NOW)
    with pytest.raises(ArenaError, match="playing another match"):
        clash.join(row.id, busy_a, NOW)
    # Both sides full, but one Red place belongs to a member who left: the start opens it again.
    for user_id in guilds.blue_members[1:4]:
        joined = clash.join(row.id, user_id, NOW)
    assert joined.match_id is None and "left their guild" in joined.held_up
    assert clash.get_clash(row.id).status == "forming"
    assert [place.user_id for place in clash.clash_view(row.id, red_leader).challenger.places] == guilds.red_members[:2]


@pytest.mark.postgres_only
def test_two_managers_accepting_at_once_make_one_clash(app, tmp_path, config):
    from sqlalchemy import func, select

    from sapien.arena import clash
    from sapien.arena.errors import ArenaError
    from sapien.arena.models import ArenaClash
    from sapien.extensions import db

    with app.test_request_context():
        guilds = two_guilds(config, members_each=2, prefix="c")
        clash_id = clash.challenge(guilds.red_members[0], guilds.blue, NOW).id
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def accept(user_id: int) -> None:
        with app.test_request_context():
            try:
                barrier.wait(timeout=10)
                clash.respond(clash_id, user_id, accept=True, now=NOW)
                outcomes.append("accepted")
            except ArenaError as error:
                outcomes.append(str(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=accept, args=(user_id,)) for user_id in guilds.blue_members[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["That challenge was already answered.", "accepted"]
    with app.app_context():
        assert (
            db.session.scalar(select(func.count()).select_from(ArenaClash).where(ArenaClash.status == "forming")) == 1
        )


def test_clash_pages_refuse_bad_input_without_a_500(app, config):
    with app.test_request_context():
        guilds = two_guilds(config, members_each=2, prefix="p")
    leader = SignedIn(app, guilds.red_members[0])
    own = leader.post("/arena/clashes/", {"guild": guilds.red_slug})
    assert own.status_code == 422 and "cannot challenge your own guild" in own.get_data(as_text=True)
    missing = leader.post("/arena/clashes/", {"guild": "No Such Guild"})
    assert missing.status_code == 422 and "There is no guild called No Such Guild" in missing.get_data(as_text=True)
    assert leader.client.get("/arena/clashes/999999").status_code == 404
    assert leader.post("/arena/clashes/999999/join").status_code == 404
    # From the other guild's page: "Challenge this guild".
    page = leader.client.get(f"/guilds/{guilds.blue_slug}").get_data(as_text=True)
    assert "Challenge this guild" in page
    sent = leader.post("/arena/clashes/", {"guild": guilds.blue_slug})
    assert sent.status_code == 303
    assert "Waiting for Blue" in leader.client.get(sent.headers["Location"]).get_data(as_text=True)


def test_entry_fees_hold_the_start_until_everyone_can_pay_and_the_winners_share_the_pot(ctx, tmp_path, config):
    from sapien.arena import clash, matches, prizes
    from sapien.ledger import service as ledger

    verified_pack(tmp_path, items=24)
    guilds = two_guilds(config, prefix="f")
    players = guilds.red_members[:3] + guilds.blue_members[:3]
    prizes.set_pool(
        prizes.PoolSettings(budget_tokens=0, prize_tokens=0, entry_fee_points=5), actor_id=players[0], now=NOW
    )
    for index, user_id in enumerate(players[1:]):
        ledger.credit(user_id, "points", 5, kind="test", key=f"clash-fee:{index}", now=NOW)
    row = clash.challenge(guilds.red_members[0], guilds.blue, NOW)
    clash.respond(row.id, guilds.blue_members[0], accept=True, now=NOW)
    for user_id in players:
        joined = clash.join(row.id, user_id, NOW)
    assert joined.match_id is None and "needs 5 points for the entry fee" in joined.held_up
    ledger.credit(players[0], "points", 5, kind="test", key="clash-fee:last", now=NOW)
    match = clash.start(row.id, NOW)
    assert [ledger.balance(user_id, "points") for user_id in players] == [0] * 6
    for user_id in players:
        play(match, user_id, perfect=user_id in guilds.red_members, now=NOW)
    assert clash.get_clash(row.id).winner_guild_id == guilds.red
    assert [ledger.balance(user_id, "points") for user_id in players] == [10, 10, 10, 0, 0, 0]
    assert matches.finish(match.id, NOW + timedelta(minutes=5)) is False


def test_one_person_holding_places_on_both_sides_leaves_the_clash_unrated_for_a_moderator(ctx, tmp_path, config):
    from sapien.arena import clash, matches, prizes
    from sapien.arena.models import ArenaRating
    from sapien.extensions import db
    from sapien.ledger import service as ledger
    from sapien.moderation.signals import record_signal

    verified_pack(tmp_path, items=24)
    guilds = two_guilds(config)
    prizes.set_pool(prizes.PoolSettings(budget_tokens=9 * prizes.TOKEN_UNIT, prize_tokens=3 * prizes.TOKEN_UNIT, entry_fee_points=0),
                    actor_id=guilds.red_members[0], now=NOW)
    red, blue = guilds.red_members[:3], guilds.blue_members[:3]
    for member in (red[2], blue[2]):  # one person with an account in each guild: the same device
        record_signal(member, "login", "198.51.100.9", "Firefox", "one-device-two-guilds", NOW)
    row = ready_clash(guilds)
    match = matches.get_match(row.match_id)
    for user_id in red + blue:
        play(match, user_id, perfect=user_id in red, now=NOW)
    db.session.expire_all()
    match = matches.get_match(row.match_id)
    assert match.flag_state == "open" and match.flag_reasons == ["shared_identity"] and not match.rated
    assert clash.get_clash(row.id).winner_guild_id == guilds.red  # the result stands, it only does not count yet
    assert all(ledger.balance(user_id, "token") == 0 for user_id in red)
    assert all(db.session.get(ArenaRating, (user_id, "guild_clash", match.season_id)) is None for user_id in red + blue)
    # A moderator clears it: rated and paid now, once.
    assert matches.clear_flag(match.id, moderator_id=guilds.red_members[3], clear=True, now=NOW)
    assert [ledger.balance(user_id, "token") for user_id in red] == [prizes.TOKEN_UNIT] * 3
    assert all(db.session.get(ArenaRating, (user_id, "guild_clash", match.season_id)).matches == 1 for user_id in red + blue)


def test_a_clash_that_never_begins_is_called_off_or_expires_and_frees_the_two_guilds(ctx, tmp_path, config, app):
    from sapien.arena import clash, sweep
    from sapien.arena.errors import ArenaError
    from sapien.notifications.service import recent

    verified_pack(tmp_path, items=24)
    guilds = two_guilds(config)
    red_leader, blue_leader = guilds.red_members[0], guilds.blue_members[0]
    row = clash.challenge(red_leader, guilds.blue, NOW)
    clash.respond(row.id, blue_leader, accept=True, now=NOW)
    clash.join(row.id, guilds.red_members[2], NOW)
    with pytest.raises(ArenaError, match="leader or officer of one of the two guilds"):
        clash.call_off(row.id, guilds.red_members[2], NOW)
    # Blue's leader calls it off through the page; the player who held a place hears of it.
    leader = SignedIn(app, blue_leader)
    page = leader.client.get(f"/arena/clashes/{row.id}").get_data(as_text=True)
    assert 'data-testid="call-off-clash"' in page
    response = leader.post(f"/arena/clashes/{row.id}/call-off")
    assert response.status_code == 303
    assert 'data-testid="clash-called-off"' in leader.client.get(f"/arena/clashes/{row.id}").get_data(as_text=True)
    assert "clash_called_off" in {notice.kind for notice in recent(guilds.red_members[2])}
    assert leader.post(f"/arena/clashes/{row.id}/call-off").status_code == 422  # once
    assert clash.active_clash_id(guilds.red_members[2]) is None

    # The guilds may meet again; a challenge nobody answers expires after three days, in the sweep.
    again = clash.challenge(red_leader, guilds.blue, NOW)
    assert sweep.finish_due(NOW + timedelta(days=2)) == 0 and clash.get_clash(again.id).status == "open"
    sweep.finish_due(NOW + timedelta(days=3, minutes=1))
    assert clash.get_clash(again.id).status == "expired"
    third = clash.challenge(blue_leader, guilds.red, NOW + timedelta(days=4))
    assert third.status == "open"
