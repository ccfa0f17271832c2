from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from sapien import events
from sapien.leaderboards import boards as leaderboards_boards
from sapien.leaderboards import freezes, reading, rebuild
from sapien.ledger import service as ledger
from sapien.redis_keys import redis_key

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday in ISO week 47, Q4
keys = count(1)
# Test clients must not run inside a long-lived app context (it would share `g`, and so the signed-in
# user, between clients); service calls here push a short context of their own.
APP = {}


@pytest.fixture(autouse=True)
def _app(app):
    APP["app"] = app
    yield app


def ctx():
    return APP["app"].test_request_context()


def plain_user(username: str) -> int:
    """A member without a signed-in client (logins are rate limited)."""
    from sapien.accounts import service as accounts

    with ctx():
        return accounts.sign_up(accounts.SignUp(username=username, email=f"{username}@example.org", password="x" * 12), now=NOW).id


def xp(user_id: int, amount: int, when: datetime = NOW, task: str = "image_classification"):
    kind = f"labeling:{task}" if task else "quest_reward"
    with ctx():
        ledger.credit(user_id, "xp", amount, kind=kind, key=f"t:{next(keys)}", now=when)


def top(board: leaderboards_boards.Board, now: datetime = NOW) -> list[tuple[int, int]]:
    with ctx():
        key, _ = reading.read_key(board, now)
        return [(e.subject_id, leaderboards_boards.decode_xp(e.score)) for e in reading.top_entries(key)]


def ids(board: leaderboards_boards.Board, now: datetime = NOW) -> list[int]:
    with ctx():
        return [e.subject_id for e in reading.top_entries(board.key(now))]


def snapshot(redis_conn) -> dict:
    """Every board key and its value, named without the deployment's prefix ("lb:xp:all:all")."""
    with ctx():
        deployment = redis_key("")
    found = {}
    for raw in sorted(redis_conn.scan_iter(match=f"{deployment}lb:*")):
        key = raw.decode().removeprefix(deployment)
        kind = redis_conn.type(raw).decode()
        if key in ("lb:built_at", "lb:rebuild-lock"):
            continue
        if kind == "zset":
            found[key] = redis_conn.zrange(raw, 0, -1, withscores=True)
        elif kind == "set":
            found[key] = sorted(redis_conn.smembers(raw))
        elif kind == "hash":
            found[key] = redis_conn.hgetall(raw)
        else:
            found[key] = redis_conn.get(raw)
    return found


def test_xp_moves_every_board_and_ties_go_to_who_got_there_first(app, make_member):
    ana, ben, cy = make_member("ana"), make_member("ben"), make_member("cyd")
    xp(ben.id, 50, NOW - timedelta(hours=2))
    xp(ana.id, 50, NOW - timedelta(hours=1))  # same XP as ben, reached later
    xp(cy.id, 80, NOW, task="text_classification")
    assert top(leaderboards_boards.Board("xp", "all")) == [(cy.id, 80), (ben.id, 50), (ana.id, 50)]
    assert top(leaderboards_boards.Board("xp", "week")) == [(cy.id, 80), (ben.id, 50), (ana.id, 50)]
    assert top(leaderboards_boards.Board("xp", "all", task_type="image_classification")) == [(ben.id, 50), (ana.id, 50)]
    assert top(leaderboards_boards.Board("xp", "all", task_type="text_classification")) == [(cy.id, 80)]
    # Same XP in the same minute: the older account (lower id) ranks first.
    xp(ana.id, 10, NOW)
    xp(ben.id, 10, NOW)
    assert top(leaderboards_boards.Board("xp", "all"))[1:] == [(ana.id, 60), (ben.id, 60)]


def test_periods_follow_iso_weeks_and_months(app, make_member):
    ana = make_member("ana")
    xp(ana.id, 30, NOW - timedelta(days=7))  # the week before, same month
    xp(ana.id, 5, NOW)
    assert top(leaderboards_boards.Board("xp", "week")) == [(ana.id, 5)]
    assert top(leaderboards_boards.Board("xp", "month")) == [(ana.id, 35)]
    assert leaderboards_boards.board_period("week", datetime(2027, 1, 1, tzinfo=UTC)) == "w2026-W53"
    assert leaderboards_boards.period_window("season", NOW) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_flush_then_rebuild_gives_identical_boards_and_the_job_is_safe_twice(app, make_member, redis_conn):
    from sapien.guilds import founding, membership
    from sapien.queue import make_worker

    members = [plain_user(f"mem{i}") for i in range(6)]
    for index, member in enumerate(members):
        xp(member, 400 + index * 10, NOW - timedelta(days=index * 3), task="image_classification" if index % 2 else "audio_transcription")
        xp(member, 7, NOW)
    with ctx():
        guild_id = founding.create_guild(members[0], founding.GuildDraft(name="Night Owls"), NOW).id
        membership.join(members[1], guild_id, NOW)
        events.gold_answered.send(None, user_id=members[2], item_id=1, pack_id=1, task_type="x", correct=True, now=NOW)
    before = snapshot(redis_conn)
    assert f"lb:xp:g:{guild_id}:all" in before and "lb:guilds:all" in before
    redis_conn.flushdb()
    with ctx():
        report = rebuild.rebuild_all(NOW)
    assert not any("accuracy" in note for note in report.notes)  # the quality area feeds the accuracy board
    after = snapshot(redis_conn)
    # The gold event above had no submission behind it: the rebuild (from quality's rows) rightly drops it.
    gold_keys = {"lb:gold:correct", "lb:gold:total"}
    assert {k: v for k, v in before.items() if k not in gold_keys} == after
    # The job (it rebuilds for the real clock), run twice through a real worker, leaves the same boards.
    with ctx():
        rebuild.enqueue_rebuild(NOW)
        make_worker().work(burst=True)
    first = snapshot(redis_conn)
    with ctx():
        rebuild.enqueue_rebuild(NOW + timedelta(minutes=1))
        make_worker().work(burst=True)
    assert snapshot(redis_conn) == first
    assert first["lb:xp:all:all"] == after["lb:xp:all:all"]


def test_rebuild_after_flush_uses_the_reconciler(app, make_member, redis_conn):
    from sapien.queue import make_worker, reconcile

    ana = make_member("ana")
    xp(ana.id, 40)
    redis_conn.flushdb()
    with ctx():
        assert reconcile()["leaderboards"] == 1
        make_worker().work(burst=True)
    assert top(leaderboards_boards.Board("xp", "all")) == [(ana.id, 40)]
    with ctx():
        assert reconcile()["leaderboards"] == 0


def test_hidden_members_are_absent_from_public_boards(app, make_member, redis_conn):
    ana, ben = make_member("ana"), make_member("ben")
    xp(ana.id, 10)
    xp(ben.id, 20)
    last_week = datetime.now(UTC) - timedelta(days=7)
    xp(ben.id, 3, last_week)
    assert ids(leaderboards_boards.Board("xp", "week"), last_week) == [ben.id]
    settings = {"display_name": "Ben", "bio": "", "country": "", "timezone": "UTC", "locale": "en"}
    response = ben.post("/settings", {**settings, "hide_from_boards": "y"})
    assert response.status_code == 303
    now = datetime.now(UTC)
    assert ids(leaderboards_boards.Board("xp", "all"), now) == [ana.id]
    assert ids(leaderboards_boards.Board("xp", "week"), last_week) == []  # past boards too
    xp(ben.id, 5, now)  # still hidden after new XP
    assert ids(leaderboards_boards.Board("xp", "all"), now) == [ana.id]
    with ctx():
        rebuild.rebuild_all(now)
    assert ids(leaderboards_boards.Board("xp", "all"), now) == [ana.id]
    page = ana.client.get("/leaderboards/").get_data(as_text=True)
    assert "/u/ana" in page and "/u/ben" not in page
    # Showing themselves again brings back their full XP.
    assert ben.post("/settings", settings).status_code == 303
    assert top(leaderboards_boards.Board("xp", "all"), now) == [(ben.id, 28), (ana.id, 10)]
    assert top(leaderboards_boards.Board("xp", "week"), last_week) == [(ben.id, 3)]


def test_around_me_and_my_ranks(app, make_member):
    first = make_member("peep0")
    people = [first.id] + [plain_user(f"peep{i}") for i in range(1, 15)]
    for index, person in enumerate(people):
        xp(person, 100 + index)
    with ctx():
        key = leaderboards_boards.Board("xp", "all").key(NOW)
        rank, rows = reading.around_entries(key, people[7], radius=2)
        assert rank == 8
        assert [row.subject_id for row in rows] == [people[i] for i in (9, 8, 7, 6, 5)]
        ranks = reading.member_ranks(people[0], NOW)
    overall = next(r for r in ranks if r.board == leaderboards_boards.Board("xp", "all"))
    assert (overall.rank, overall.value, overall.size) == (15, 100, 15)
    assert any(r.board.task_type == "image_classification" for r in ranks)
    page = first.client.get("/leaderboards/").get_data(as_text=True)
    assert "Around you" not in page  # all 15 fit on the first page: no separate "around me" table


def test_accuracy_board_needs_minimum_gold_volume(app, make_member):
    previous = app.config["LEADERBOARD_ACCURACY_MIN_GOLD"]
    app.config["LEADERBOARD_ACCURACY_MIN_GOLD"] = 3
    try:
        ana, ben = make_member("ana"), make_member("ben")
        with ctx():
            for correct in (True, True, False):
                events.gold_answered.send(None, user_id=ana.id, item_id=1, pack_id=1, task_type="t", correct=correct, now=NOW)
            for correct in (True, True):
                events.gold_answered.send(None, user_id=ben.id, item_id=1, pack_id=1, task_type="t", correct=correct, now=NOW)
            key = leaderboards_boards.Board("accuracy").key(NOW)
            entries = reading.top_entries(key)
            assert [e.subject_id for e in entries] == [ana.id]  # ben has only 2 gold answers
            assert leaderboards_boards.decode_accuracy(entries[0].score) == (66.6666, 3)
            events.gold_answered.send(None, user_id=ben.id, item_id=1, pack_id=1, task_type="t", correct=True, now=NOW)
            assert [e.subject_id for e in reading.top_entries(key)] == [ben.id, ana.id]
    finally:
        app.config["LEADERBOARD_ACCURACY_MIN_GOLD"] = previous


def test_freeze_keeps_the_public_board_while_recording(app, make_member, redis_conn):
    mod, ana, ben = make_member("mod", role="moderator"), make_member("ana"), make_member("ben")
    xp(ana.id, 50, NOW - timedelta(hours=1))
    season = leaderboards_boards.Board("xp", "season")
    with ctx():
        freezes.freeze_board(season, mod.id, NOW)
    xp(ben.id, 500, NOW + timedelta(minutes=5))
    assert top(season) == [(ana.id, 50)]  # what the public sees
    assert ids(season) == [ben.id, ana.id]  # still recording
    with ctx(), pytest.raises(leaderboards_boards.LeaderboardError):
        freezes.freeze_board(season, mod.id, NOW)
    redis_conn.flushdb()
    with ctx():
        rebuild.rebuild_all(NOW + timedelta(minutes=10))
    assert top(season) == [(ana.id, 50)]
    with ctx():
        freezes.unfreeze_board(season, mod.id, NOW)
    assert top(season) == [(ben.id, 500), (ana.id, 50)]


def test_board_page_full_fragment_paging_and_bad_input(app, make_member):
    ana = make_member("ana")
    xp(ana.id, 10, datetime.now(UTC))
    full = ana.client.get("/leaderboards/?board=xp&period=week")
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert 'hx-trigger="every 30s"' in full.get_data(as_text=True)
    fragment = ana.client.get("/leaderboards/?board=xp&period=week", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body and 'id="board"' in body
    assert "HX-Request" in fragment.headers["Vary"]
    assert ana.client.get("/leaderboards/?period=decade").status_code == 400
    assert ana.client.get("/leaderboards/?board=money").status_code == 400
    assert ana.client.get("/leaderboards/?guild=99999").status_code == 404
    assert ana.client.get("/leaderboards/?guild=abc").status_code == 400
    assert ana.client.get("/leaderboards/?page=-3").status_code == 200
    assert ana.client.get("/leaderboards/me").status_code == 200
    anonymous = app.test_client().get("/leaderboards/?board=xp&period=week")
    assert anonymous.status_code == 200 and "/u/ana" in anonymous.get_data(as_text=True)
    assert app.test_client().get("/leaderboards/me").status_code in (302, 303)
    assert ana.client.get("/leaderboards/?task=%3Cscript%3E").status_code == 400
    assert ana.post("/leaderboards/freeze", {"board": "xp", "period": "season"}).status_code == 403
    mod = make_member("mod", role="moderator")
    assert mod.post("/leaderboards/freeze", {"board": "xp", "period": "season"}).status_code == 303
    assert "frozen" in ana.client.get("/leaderboards/?board=xp&period=season").get_data(as_text=True)
    assert mod.post("/leaderboards/freeze", {"board": "xp", "period": "season"}).status_code == 303  # already frozen: a message
    assert mod.post("/leaderboards/freeze", {"board": "accuracy"}).status_code == 303  # not freezable: a message
    assert mod.post("/leaderboards/freeze", {"board": "xp", "period": "eon"}).status_code == 400
    assert ana.post("/leaderboards/rebuild").status_code == 403
    assert mod.post("/leaderboards/rebuild").status_code == 303
    with ctx():
        from sapien.queue import get_queue

        assert any(job_id.startswith("leaderboards-rebuild-") for job_id in get_queue().get_job_ids())


def test_xp_posted_during_a_rebuild_is_neither_lost_nor_counted_twice(app, redis_conn):
    from sqlalchemy import text

    from sapien.extensions import db

    ana, ben, cyd = plain_user("ana"), plain_user("ben"), plain_user("cyd")
    xp(ana, 10)
    with ctx():
        redis_conn.set(leaderboards_boards.rebuilding_key(), "1")  # a rebuild has started …
        xp(cyd, 30)  # … posted before its snapshot: counted by the snapshot, queued too
        with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as snapshot, snapshot.begin():
            snapshot.execute(text("SELECT 1"))  # the snapshot is taken here
            xp(ben, 20)  # posted after the snapshot: only the queue knows it
            pending, seen = rebuild._rebuild_from_snapshot(snapshot, redis_conn, NOW, {}, rebuild.RebuildReport())
        assert top(leaderboards_boards.Board("xp", "all")) == [(cyd, 30), (ana, 10)]  # the swap alone misses ben
        rebuild._replay(pending, seen, NOW)
    assert top(leaderboards_boards.Board("xp", "all")) == [(cyd, 30), (ben, 20), (ana, 10)]
    with ctx():
        assert not redis_conn.exists(leaderboards_boards.rebuilding_key()) and not redis_conn.exists(leaderboards_boards.pending_key())
    xp(ben, 1)  # after the rebuild, updates go straight to the boards again
    assert top(leaderboards_boards.Board("xp", "all"))[1] == (ben, 21)


def test_paging_and_around_me_beyond_the_first_page(app, make_member):
    from sapien.accounts import service as accounts

    with ctx():
        password_hash = accounts.hash_password("x" * 12)
        crowd = [
            accounts.sign_up(accounts.SignUp(username=f"crowd{i}", email=f"crowd{i}@example.org", password=""), now=NOW, password_hash=password_hash).id
            for i in range(104)
        ]
    for index, user_id in enumerate(crowd):
        xp(user_id, 1000 + index)
    me = make_member("lastone")
    xp(me.id, 5)
    first = me.client.get("/leaderboards/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert first.count('class="board__rank"><span') == 100 + 6  # the top 100, then me and the 5 above me
    assert "Around you" in first and "Go to page 2" in first and "Page 1 of 2" in first
    second = me.client.get("/leaderboards/?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Around you" not in second and 'class="is-me"' in second and ">105<" in second
