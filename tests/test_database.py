"""How a request's transaction ends (sapien.database.keep_prepared_statements): one that only read keeps the
connection's prepared statements, one that wrote without committing is still rolled back, and one a failed
flush left deactivated does not break the response. And how a pooled connection the server dropped is
replaced (sapien.database.ping_idle_connections)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from sapien.accounts.models import User
from sapien.extensions import db


def _app_with_probe_routes(make_app):
    site = make_app()

    @site.get("/_test/reads")
    def reads():
        # The same read each time, as a page's queries are; then how many statements this connection has prepared.
        db.session.scalar(select(func.count()).select_from(User).where(User.username != "nobody"))
        return str(db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements")))

    @site.get("/_test/writes-then-forgets")
    def writes_then_forgets():
        db.session.execute(update(User).values(bio="never committed"))
        return "written, not committed"

    @site.get("/_test/handles-a-failed-write")
    def handles_a_failed_write():
        db.session.add(User(username="incomplete"))  # NOT NULL columns missing: the flush fails
        try:
            db.session.flush()
        except IntegrityError:
            return "handled"  # without a rollback: the session's transaction is left deactivated
        return "not reached"

    return site


def test_statements_run_again_and_again_get_prepared_once_reads_end_with_commit(make_app):
    client = _app_with_probe_routes(make_app).test_client()
    counts = [int(client.get("/_test/reads").text) for _ in range(8)]
    # psycopg prepares a statement on its 5th run; a rollback at each request's end used to forget it every time.
    assert counts[0] == 0
    assert counts[-1] >= 1


def test_a_request_that_wrote_without_committing_is_still_rolled_back(make_app, make_member):
    make_member("writer")
    site = _app_with_probe_routes(make_app)
    assert site.test_client().get("/_test/writes-then-forgets").status_code == 200
    with site.app_context():
        assert db.session.scalars(select(User.bio)).all() == [""]


def test_a_request_that_handled_a_failed_write_still_answers(make_app):
    response = _app_with_probe_routes(make_app).test_client().get("/_test/handles-a-failed-write")
    assert (response.status_code, response.text) == (200, "handled")


def _backend_pid(site) -> int:
    with site.app_context():
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        db.session.commit()
        return pid  # the connection goes back to the pool as the context ends


def _end_backend(site, pid: int) -> None:
    """What a server restart or failover does to a pooled connection: its backend is gone. The call waits (up
    to 10 s) until the backend has exited, so the pooled connection is surely dead when the test goes on."""
    engine = create_engine(site.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        connection.commit()
    engine.dispose()


@pytest.mark.postgres_only
def test_a_pooled_connection_the_server_ended_while_it_sat_idle_is_replaced_before_use(make_app, monkeypatch):
    from sapien import database

    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)  # every pooled connection counts as long idle
    site = make_app()
    first = _backend_pid(site)
    _end_backend(site, first)
    # The ping finds the connection dead: the pool opens another one and the caller never sees the failure.
    assert _backend_pid(site) != first


@pytest.mark.postgres_only
def test_a_connection_used_a_moment_ago_is_not_pinged_so_one_caller_sees_the_drop_and_the_next_gets_a_fresh_one(make_app):
    site = make_app()
    first = _backend_pid(site)
    _end_backend(site, first)
    with site.app_context(), pytest.raises(OperationalError):
        db.session.scalar(text("SELECT 1"))  # a request here answers 503 "try again" (tests/faults/test_postgres_drop.py)
    assert _backend_pid(site) != first
