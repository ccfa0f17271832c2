"""Database helpers shared by every area: transactions, time, dialect quirks."""

from __future__ import annotations

import functools
import logging
import os
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import click
from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import event, exc, inspect, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from sapien.extensions import db

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL's "deadlock detected" and "could not serialize": the transaction was rolled back and may
# simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
TRANSACTION_ATTEMPTS = 3


def utcnow() -> datetime:
    """Timezone-aware UTC now. Services take `now` as an argument; routes and jobs call this."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; treat them as the UTC they were stored as."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction for a service call.

    The outermost call commits (or rolls back on error); nested calls from other services join it,
    so a workflow that spans areas (accept a submission, credit the ledger) commits once or not at all.
    """
    session = db.session()
    depth = session.info.get("uow_depth", 0)
    session.info["uow_depth"] = depth + 1
    try:
        yield session
        if depth == 0:
            while callbacks := session.info.pop("before_commit", []):
                for callback in callbacks:
                    callback()
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
            session.info.pop("before_commit", None)
            session.info.pop("after_commit", None)
        raise
    finally:
        session.info["uow_depth"] = depth
    if depth == 0:
        for callback in session.info.pop("after_commit", []):
            _run_after_commit(callback)


def _run_after_commit(callback: Callable[[], object]) -> None:
    """Run one after-commit callback. Redis being down must not fail work that has committed: the database
    is the source of truth, the reconciler re-enqueues pending work from it, and caches are rebuilt."""
    try:
        callback()
    except RedisError as error:
        log.warning("after-commit %s skipped, Redis is unavailable: %s", getattr(callback, "__qualname__", callback), error)


@contextmanager
def rows_kept_loaded() -> Iterator[None]:
    """Commits inside this block (and the after-commit listeners they run) keep the loaded rows loaded.

    For a request that has already read what it shows: expiring the rows on commit would only make the
    next touch of each (the signed-in member above all, in listeners and after-request hooks) reload it,
    one query apiece.
    """
    session = db.session()
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = previous


def after_commit(callback: Callable[[], object]) -> None:
    """Run `callback` once the current unit of work has committed (signals, job enqueues).

    Outside a unit of work it runs at once: there is nothing left to wait for.
    """
    session = db.session()
    if session.info.get("uow_depth", 0) == 0:
        callback()
    else:
        session.info.setdefault("after_commit", []).append(callback)


def before_commit(callback: Callable[[], object]) -> None:
    """Run `callback` at the end of the current unit of work, inside its transaction, just before it commits.

    For writes that lock rows many workflows share (a member's reputation row): taken last, they keep the
    lock order (see `sapien.labeling.submissions`: a member's balance rows before their reputation row)
    whatever the workflow.
    Outside a unit of work it runs at once.
    """
    session = db.session()
    if session.info.get("uow_depth", 0) == 0:
        callback()
    else:
        session.info.setdefault("before_commit", []).append(callback)


def is_retryable(error: BaseException) -> bool:
    """A deadlock or serialization failure: PostgreSQL rolled the transaction back, running it again is safe."""
    if not isinstance(error, DBAPIError):
        return False
    original = error.orig
    return getattr(original, "sqlstate", None) in RETRYABLE_SQLSTATES or getattr(original, "pgcode", None) in RETRYABLE_SQLSTATES


def retry_transaction(function: Callable) -> Callable:
    """Run a service call that owns its transaction again (up to `TRANSACTION_ATTEMPTS` times in all) when
    PostgreSQL picks it as a deadlock victim or fails to serialize it.

    A safety net behind a consistent lock order, not a replacement for one. Only for a call whose whole
    unit of work can be re-run: it starts the transaction (inside another unit of work it just runs, and
    the error goes to the caller that owns the transaction), everything it wrote was rolled back, its
    after-commit callbacks were dropped, and its ledger postings carry idempotency keys.
    """

    @functools.wraps(function)
    def run(*args, **kwargs):
        session = db.session()
        if session.info.get("uow_depth", 0):
            return function(*args, **kwargs)
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except DBAPIError as error:
                if attempt == TRANSACTION_ATTEMPTS or not is_retryable(error):
                    raise
                log.warning("%s: %s on attempt %s; running it again", function.__qualname__, type(error.orig).__name__, attempt)
                session.rollback()
                time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")

    return run


def built_once(build: Callable[..., T]) -> Callable[..., T]:
    """A statement builder whose statement is made once per distinct argument (a dialect's name, a set of
    columns) and then reused, the values going in as bind parameters at execution.

    For the statements every answer runs: building a statement of a few subqueries, and the cache key
    SQLAlchemy derives from it, costs about a millisecond of CPU, several times what running it costs. On
    the answer path that was about a quarter of the request's CPU. Parameter names must differ from the
    column names of an INSERT's or UPDATE's table, which SQLAlchemy keeps for the values it sets.
    """
    return functools.cache(build)


def dialect_insert(model, dialect_name: str | None = None):
    """An INSERT that knows `ON CONFLICT` (upserts) on PostgreSQL and on SQLite alike (the app's database's
    dialect unless `dialect_name` says which, for a statement built once per dialect)."""

    return (pg_insert if (dialect_name or db.engine.dialect.name) == "postgresql" else sqlite_insert)(model)


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _lock_space(scope: str) -> int:
    return zlib.crc32(scope.encode()) - 2**31  # pg_advisory_lock(int4, int4): the scope, then the key


@contextmanager
def one_at_a_time(scope: str, key: int) -> Iterator[None]:
    """Callers with the same (scope, key) take turns: on PostgreSQL a session-level advisory lock on a
    connection of its own, held across the caller's commits (a long job that commits as it goes) and let go
    at the end, or by the server when the process dies. SQLite has one writer at a time anyway."""
    if not is_postgres():
        yield
        return
    params = {"space": _lock_space(scope), "key": key}
    with db.engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:space, :key)"), params)
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), params)
            connection.commit()


@contextmanager
def claimed(scope: str, keys: Iterable[int]) -> Iterator[set[int]]:
    """The keys of `keys` that no other caller holds right now, held by this one until the block ends (the
    same advisory locks as `one_at_a_time`, without waiting): work another process is doing is skipped,
    not done twice. On SQLite every key."""
    keys = sorted(set(keys))
    if not is_postgres() or not keys:
        yield set(keys)
        return
    space = _lock_space(scope)
    with db.engine.connect() as connection:
        got = {key for key in keys if connection.scalar(text("SELECT pg_try_advisory_lock(:space, :key)"), {"space": space, "key": key})}
        connection.commit()
        try:
            yield got
        finally:
            for key in got:
                connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), {"space": space, "key": key})
            connection.commit()


def configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave: foreign keys, WAL for a web server beside a worker, working SAVEPOINTs."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # pysqlite's own transaction handling breaks SAVEPOINT; we emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled connection used this recently is taken as alive without a ping (see `ping_idle_connections`).
PING_AFTER_IDLE_SECONDS = 10.0


def ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection with a ping before use only when it sat idle for `PING_AFTER_IDLE_SECONDS`.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: one more round trip per request and per job
    transaction, a tenth of the labeling path's. A connection that served a request a moment ago is almost
    surely alive; if the server did drop it in between (a restart, a failover), its first statement fails
    and that request gets the 503 "try again" page, while the pool throws that connection away (and the
    others opened before it) so the next request starts fresh. A connection idle for longer, which a restart
    overnight or a server's idle timeout may have ended unseen, is pinged and replaced as before.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        idle_since = record.info.get("idle_since")  # None: a fresh connection, or one the pool just replaced
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError() from error  # replaced at once, with every older connection
            raise


def name_postgres_connections(engine: Engine, name: str) -> None:
    """Each PostgreSQL connection carries `application_name` "<name>-<pid>", so pg_stat_activity tells which
    process holds a backend (a web worker or a job worker, after any fork). A name in the URL wins."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "do_connect")
    def _named(_dialect, _record, _cargs, cparams):
        cparams.setdefault("application_name", f"{name}-{os.getpid()}")


def keep_prepared_statements(app: Flask, engine: Engine) -> None:
    """On PostgreSQL, a session that only read since its last commit ends with COMMIT at teardown, not ROLLBACK.

    psycopg prepares a statement on the server once a connection has run it 5 times, so PostgreSQL stops
    parsing and planning it on every execution (on the answer path that was about a third of the server's
    CPU). But psycopg forgets all of a connection's prepared statements whenever a transaction rolls back,
    and Flask-SQLAlchemy rolls back every request's and job's session when it ends. A GET reads without
    committing and many POSTs read after their commit, so the counts seldom got to 5 before a rollback
    reset them. For a transaction that ran nothing but SELECTs, COMMIT and ROLLBACK
    end it the same way. A transaction that wrote, or a request that failed, still rolls back.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "begin")
    def _reads_only_so_far(connection):
        connection.info["wrote"] = False

    @event.listens_for(engine, "before_cursor_execute")
    def _note_writes(connection, _cursor, statement, _parameters, _context, _executemany):
        if not statement.startswith("SELECT"):  # DML, DDL, SAVEPOINT: anything but a read
            connection.info["wrote"] = True

    @app.teardown_appcontext
    def _end_reads_with_commit(error):  # runs before Flask-SQLAlchemy's teardown removes the session
        if error is not None or not db.session.registry.has():
            return
        session = db.session()
        transaction = session.get_transaction()
        # A transaction a failed flush deactivated (an IntegrityError the caller handled) is left to the rollback.
        if transaction is None or not transaction.is_active or session.new or session.dirty or session.deleted:
            return
        try:
            if session.connection().info.get("wrote", True):
                return
            session.expire_on_commit = False  # the session is being removed: its rows stay as they were read
            session.commit()
        except SQLAlchemyError as failure:  # a dropped connection: the session's removal rolls back and discards it
            log.warning("could not end a read-only transaction: %s", failure)


def needs_schema(command):
    """For commands that read or write tables: on a database nobody has upgraded yet, say what to run
    instead of failing with a "no such table" traceback. (Goes under the click decorators.)"""

    @functools.wraps(command)
    def checked(*args, **kwargs):
        if not inspect(db.engine).has_table("alembic_version"):
            raise click.ClickException("the database has no schema yet: run `flask --app app db upgrade` first")
        return command(*args, **kwargs)

    return checked
