"""The harness's own promises: a test's teardown empties the tables even when another session still
holds a lock on one of them (a live-server request the browser left running, a stray thread), and if a
teardown ever fails anyway, the next test still starts from empty tables."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request

import psycopg
import pytest
from sqlalchemy import func, select

from tests import conftest as harness


def _add_a_user(app) -> None:
    from sapien.accounts import service as accounts
    from sapien.database import utcnow

    with app.test_request_context():
        accounts.sign_up(accounts.SignUp(username="leftover", email="leftover@example.org", password="x" * 12), now=utcnow())


def _user_count(app) -> int:
    from sapien.accounts.models import User
    from sapien.extensions import db

    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(User))
        db.session.remove()
        return count


def _wait_for_truncate_to_block(url: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
                " AND (query LIKE 'TRUNCATE%' OR query LIKE 'LOCK TABLE%')"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("TRUNCATE never waited for the lock")


def _truncate_in_thread(app, outcome: dict, **options) -> threading.Thread:
    def run():
        try:
            harness._truncate_all(app, **options)
            outcome["done"] = True
        except Exception as error:  # noqa: BLE001 - reported by the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.postgres_only
def test_teardown_survives_a_deadlock_with_a_request_still_reading(app, _database):
    """What the issue saw: a request (here a plain connection) reads the last table TRUNCATE needs, then
    one it has already locked. PostgreSQL breaks the deadlock by failing the TRUNCATE."""
    _add_a_user(app)
    request = psycopg.connect(_database)
    outcome: dict = {}
    try:
        request.execute("SELECT count(*) FROM reviews")  # AccessShareLock, held until the transaction ends
        truncate = _truncate_in_thread(app, outcome)
        _wait_for_truncate_to_block(_database)

        def read_users():
            with contextlib.suppress(psycopg.Error):  # the deadlock may be broken on either side
                request.execute("SELECT count(*) FROM users")  # waits on the TRUNCATE: a deadlock

        reader = threading.Thread(target=read_users, daemon=True)
        reader.start()
        truncate.join(timeout=30)
        assert not truncate.is_alive(), "TRUNCATE still waiting after 30 s"
        assert "error" not in outcome, outcome.get("error")
        reader.join(timeout=10)
        assert not reader.is_alive()
        with pytest.raises(psycopg.OperationalError):  # the straggler's session was ended
            request.execute("SELECT 1")
    finally:
        request.close()
    assert _user_count(app) == 0


@pytest.mark.postgres_only
def test_teardown_does_not_wait_forever_for_a_session_idle_in_its_transaction(app, _database):
    _add_a_user(app)
    idle = psycopg.connect(_database)
    outcome: dict = {}
    try:
        idle.execute("SELECT count(*) FROM users")  # and then nothing: a thread that never finished
        truncate = _truncate_in_thread(app, outcome)
        truncate.join(timeout=20)
        assert not truncate.is_alive(), "TRUNCATE still waiting after 20 s"
        assert outcome == {"done": True}, outcome
    finally:
        idle.close()
    assert _user_count(app) == 0


@pytest.mark.postgres_only
def test_after_a_failed_teardown_the_next_test_starts_from_empty_tables(app, _database):
    _add_a_user(app)
    holder = psycopg.connect(_database)
    try:
        holder.execute("SELECT count(*) FROM users")
        with pytest.raises(Exception, match="lock timeout"):  # one attempt, no ending of other sessions
            harness._truncate_all(app, lock_timeout="200ms", attempts=1)
    finally:
        holder.close()
    assert _user_count(app) == 1
    harness._start_clean(app)  # what the next test's setup does
    assert _user_count(app) == 0


def test_a_tests_setting_and_rows_are_gone_after_it(app):
    with harness._isolation(app):
        app.config["QUEST_POLL_SECONDS"] = 1
        app.config["MAX_MEDIA_BYTES"] = 1500
        _add_a_user(app)
    assert "QUEST_POLL_SECONDS" not in app.config
    assert app.config["MAX_MEDIA_BYTES"] == 10 * 1024 * 1024
    assert _user_count(app) == 0


def test_the_live_server_waits_for_the_request_it_is_still_answering():
    """A poll that arrived just before the browser closed is answered before teardown goes on."""
    release, answering = threading.Event(), threading.Event()

    def slow_app(environ, start_response):
        answering.set()
        release.wait(timeout=10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    server = harness.LiveServer(slow_app)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        assert server.wait_until_quiet(1)
        client = threading.Thread(target=urllib.request.urlopen, args=(f"http://127.0.0.1:{server.server_port}/",), daemon=True)
        client.start()
        assert answering.wait(timeout=5)
        assert server.busy() and not server.wait_until_quiet(0.3)
        release.set()
        assert server.wait_until_quiet(5)
        client.join(timeout=5)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
