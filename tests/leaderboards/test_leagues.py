"""Weekly leagues: the league follows last week's place, zones follow this week's, arrows follow the daily snapshot."""

from __future__ import annotations

from datetime import timedelta

from sapien.leaderboards.leagues import league_for, league_page
from tests.leaderboards.test_boards import NOW, _app, ctx, plain_user, xp  # noqa: F401 - _app is an autouse fixture

LAST_WEEK = NOW - timedelta(days=7)


def test_league_for_splits_last_weeks_board_by_share():
    # 20 members: top 5% → 1 in Diamond, next 15% → 3 in Gold, next 30% → 6 in Silver, the rest Bronze.
    assert [league_for(rank, 20) for rank in (1, 2, 4, 5, 10, 11, 20)] == [0, 1, 1, 2, 2, 3, 3]
    assert league_for(None, 20) == 3  # not on last week's board: Bronze
    assert league_for(1, 0) == 3


def test_members_play_in_the_league_of_last_weeks_place_with_zones_and_a_pinned_row(make_member):
    members = [plain_user(f"leaguer{i}") for i in range(20)]
    for position, user_id in enumerate(members):  # last week: leaguer0 first … leaguer19 last
        xp(user_id, 1000 - 10 * position, when=LAST_WEEK)
    # This week the Gold players (places 2-4 last week) score in reverse order, and 16 others 1 to 16 XP.
    for user_id, amount in zip(members[1:4], (5, 50, 500), strict=True):
        xp(user_id, amount)
    for amount, user_id in enumerate(members[4:], start=1):
        xp(user_id, amount)
    with ctx():
        page = league_page(members[1], NOW)
    assert page.league == "gold"
    assert [row.user_id for row in page.rows] == [members[3], members[2], members[1]]
    assert page.me.user_id == members[1] and page.me.is_me
    # 19 on this week's board: 1st → Diamond next week, 2nd-4th stay in Gold, 14th (5 XP) → Bronze.
    assert [row.zone for row in page.rows] == ["promotion", "", "demotion"]
    assert (page.promotion_to, page.demotion_to) == ("Diamond league", "Silver league")
    assert [row.move for row in page.rows] == [None, None, None]  # no snapshot from yesterday


def test_arrows_show_the_move_since_yesterdays_snapshot(make_member):
    a, b = plain_user("arrow_a"), plain_user("arrow_b")
    yesterday = NOW - timedelta(days=1)
    xp(a, 100, when=yesterday - timedelta(hours=1))
    xp(b, 50, when=yesterday - timedelta(hours=1))
    with ctx():
        first = league_page(b, yesterday)  # the first look yesterday keeps the day's snapshot
    assert [row.user_id for row in first.rows] == [a, b]
    xp(b, 200)
    with ctx():
        page = league_page(b, NOW)
    assert [(row.user_id, row.move) for row in page.rows] == [(b, 1), (a, -1)]


def test_the_league_page_pins_the_viewer_below_the_shown_rows(make_member, monkeypatch):
    from sapien.leaderboards import leagues

    monkeypatch.setattr(leagues, "SHOWN", 2)
    ids = [plain_user(f"pin{i}") for i in range(4)]
    for position, user_id in enumerate(ids):
        xp(user_id, 100 - position)
    with ctx():
        page = league_page(ids[-1], NOW)
    assert [row.user_id for row in page.rows] == ids[:2]
    assert page.me.user_id == ids[-1] and page.me.rank == 4


def test_league_view_renders_for_a_member(make_member):
    ana = make_member()
    xp(ana.id, 40)
    response = ana.client.get("/leaderboards/league")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Bronze league" in body and "is-me" in body
    assert ana.client.get("/leaderboards/league", headers={"HX-Request": "true"}).get_data(as_text=True).lstrip().startswith("<section")
