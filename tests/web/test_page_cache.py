"""The dashboard is served from a per-member cache in Redis that never shows stale figures."""

from __future__ import annotations

import re
from contextlib import contextmanager

from sapien.database import utcnow
from tests.conftest import CSRF_META


def _points(page: str) -> str:
    return re.search(r'id="dashboard-points">([^<]+)<', page).group(1)


def _without_csrf(page: str) -> str:
    return page.replace(CSRF_META.search(page).group(1), "")


def _cached_keys(redis_conn) -> list[bytes]:
    return redis_conn.keys("*:member:*:page:dashboard:*")  # under the deployment's key prefix


def test_dashboard_is_cached_and_stale_once_the_ledger_moves(app, make_member, redis_conn):
    from sapien.ledger import service as ledger

    ana = make_member("ana")
    ana.client.get("/dashboard")  # shows (and consumes) the welcome flash: rendered fresh
    assert not _cached_keys(redis_conn)
    first = ana.client.get("/dashboard").get_data(as_text=True)
    assert _cached_keys(redis_conn)
    assert _without_csrf(ana.client.get("/dashboard").get_data(as_text=True)) == _without_csrf(first)

    with app.app_context():
        ledger.credit(ana.id, "points", 1234, kind="bonus", key="test-bonus", now=utcnow())
    page = ana.client.get("/dashboard").get_data(as_text=True)
    assert _points(page) != _points(first)
    assert "Bonus" in page  # the new entry is in the recent activity


def test_cached_page_carries_each_sessions_own_csrf_token(app, make_member):
    ana = make_member("ana")
    ana.client.get("/dashboard")
    first_token = CSRF_META.search(ana.client.get("/dashboard").get_data(as_text=True)).group(1)

    # A second session of the same member gets its own token from the cached page, and it works.
    second = app.test_client()
    page = second.get("/login").get_data(as_text=True)
    second.post("/login", data={"login": "ana", "password": ana.password, "csrf_token": CSRF_META.search(page).group(1)})
    second_page = second.get("/dashboard").get_data(as_text=True)
    second_token = CSRF_META.search(second_page).group(1)
    assert "\x00" not in second_page
    assert second_token != first_token
    assert second.post("/notifications/read-all", data={"csrf_token": second_token}).status_code == 303


def test_flash_messages_are_never_lost_to_a_cached_page(make_member):
    ana = make_member("ana")
    ana.client.get("/dashboard")
    with ana.client.session_transaction() as session:
        session["_flashes"] = [("success", "Saved just now")]
    assert "Saved just now" in ana.client.get("/dashboard").get_data(as_text=True)


def test_a_members_post_and_a_new_quest_make_the_page_stale(app, make_member, redis_conn):
    from sapien.member_cache import generation_key
    from sapien.progression.quests import quest_version_key

    ana = make_member("ana")
    with app.app_context():
        generation_of_ana, quest_version = generation_key(ana.id), quest_version_key()
    ana.client.get("/dashboard")
    generation = redis_conn.get(generation_of_ana)
    assert ana.post("/notifications/read-all").status_code == 303
    assert redis_conn.get(generation_of_ana) != generation

    ana.client.get("/dashboard")
    key = _cached_keys(redis_conn)[0]
    before = redis_conn.get(key)
    redis_conn.set(quest_version, "another catalogue")
    ana.client.get("/dashboard")
    assert redis_conn.get(key) != before  # re-rendered under the new quest catalogue


def test_cache_off_renders_every_time(make_app, make_member, redis_conn):
    app = make_app(PAGE_CACHE_SECONDS=0)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    make_member("ana")
    client.post("/login", data={"login": "ana", "password": "correct horse battery", "csrf_token": CSRF_META.search(page).group(1)})
    assert client.get("/dashboard").status_code == 200
    assert not _cached_keys(redis_conn)


@contextmanager
def statements_run(app):
    from sqlalchemy import event

    from sapien.extensions import db

    seen: list[str] = []

    def record(_connection, _cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_signed_in_user_comes_from_the_cache_without_touching_the_database(app, make_member):
    ana = make_member("ana")
    ana.client.get("/dashboard")
    ana.client.get("/dashboard")  # now the user row and the page are both cached
    with statements_run(app) as seen:
        page = ana.client.get("/dashboard").get_data(as_text=True)
    assert "Hello, ana" in page
    assert seen == []


def test_ban_and_role_change_reach_the_next_request_despite_the_cache(app, make_member):
    from sapien.accounts import service as accounts

    ana = make_member("ana")
    ana.client.get("/dashboard")
    assert "Campaigns" not in ana.client.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        accounts.set_role(ana.id, "moderator")
    assert "Campaigns" in ana.client.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        accounts.ban(ana.id, "spam")
    assert ana.client.get("/dashboard").status_code == 303  # signed out at once


def test_a_cached_user_is_saved_like_a_loaded_one(app, make_member):
    ana = make_member("ana")
    ana.client.get("/dashboard")
    ana.client.get("/dashboard")
    response = ana.post("/settings", {"display_name": "Ana Lima", "bio": "hello", "country": "BR", "timezone": "UTC", "locale": "en"})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert "Hello, Ana Lima" in ana.client.get("/dashboard").get_data(as_text=True)


def test_a_post_leaves_the_cached_user_row_alone(app, make_member):
    """A POST makes the member's pages stale, not their user row: the next request does not reload it."""
    ana = make_member("ana")
    ana.client.get("/dashboard")
    ana.client.get("/dashboard")
    assert ana.post("/streak/freeze").status_code == 303  # refused (no points): the user row is untouched
    with statements_run(app) as seen:
        page = ana.client.get("/dashboard").get_data(as_text=True)
    assert "Hello, ana" in page
    assert seen  # the page itself was stale and rendered again
    assert not [statement for statement in seen if "users.password_hash" in statement]


@contextmanager
def redis_round_trips(monkeypatch):
    """Every trip to Redis this process makes (a command or a whole pipeline), as its command names."""
    from redis.connection import AbstractConnection

    trips: list[list[str]] = []
    send = AbstractConnection.send_packed_command

    def counted(connection, command, check_health=True):
        packed = command.encode() if isinstance(command, str) else b"".join(command)
        trips.append([name.decode().upper() for name in re.findall(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n", packed)])
        return send(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    yield trips
    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)


def test_a_cached_dashboard_costs_one_redis_round_trip(app, make_member, monkeypatch):
    """The rate limit, the cached user row and the cached page come back in one pipeline."""
    ana = make_member("ana")
    ana.client.get("/dashboard")
    ana.client.get("/dashboard")  # the user row and the page are cached now
    with redis_round_trips(monkeypatch) as trips, statements_run(app) as seen:
        page = ana.client.get("/dashboard").get_data(as_text=True)
    assert "Hello, ana" in page
    assert seen == []
    assert len(trips) == 1, trips


def test_a_new_day_renders_the_page_afresh(make_member, redis_conn, monkeypatch):
    """The dates a page was made for are part of its stamp: past midnight it is not served again."""
    from datetime import UTC, datetime

    from sapien import member_cache

    ana = make_member("ana")
    ana.client.get("/dashboard")
    monkeypatch.setattr(member_cache, "utcnow", lambda: datetime(2026, 3, 1, 23, 0, tzinfo=UTC))
    ana.client.get("/dashboard")
    key = _cached_keys(redis_conn)[0]
    before = redis_conn.get(key)
    ana.client.get("/dashboard")
    assert redis_conn.get(key) == before  # served from the cache
    monkeypatch.setattr(member_cache, "utcnow", lambda: datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    ana.client.get("/dashboard")
    assert b"2026-03-02" in redis_conn.get(key)


def test_the_fragment_and_the_page_are_cached_apart(make_member, redis_conn):
    ana = make_member("ana")
    ana.client.get("/dashboard")
    htmx = {"HX-Request": "true"}
    page, fragment = ana.client.get("/dashboard").get_data(as_text=True), ana.client.get("/dashboard", headers=htmx).get_data(as_text=True)
    assert len(_cached_keys(redis_conn)) == 2
    assert "<html" in page and "<html" not in fragment
    again_fragment, again_page = ana.client.get("/dashboard", headers=htmx).get_data(as_text=True), ana.client.get("/dashboard").get_data(as_text=True)
    assert 'id="dashboard-points"' in again_fragment and "<html" not in again_fragment
    assert _without_csrf(again_page) == _without_csrf(page)
