"""Test fixtures on the real services: PostgreSQL, Redis, anvil and chromium.

Each test run gets a fresh PostgreSQL database built by the migrations; each test starts from empty
tables (truncated after it) and an empty Redis database index of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from redis import Redis
from sqlalchemy import text
from web3 import Web3

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sapien_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _worker_database_url() -> str:
    # Each xdist worker gets its own database, so parallel runs never share rows.
    return TEST_DATABASE_URL + (f"_{WORKER}" if WORKER else "")


def _worker_redis_url() -> str:
    # xdist worker gwN takes the index N above the base (14 → 14 and 15 for two workers).
    if not WORKER:
        return TEST_REDIS_URL
    base, _, index = TEST_REDIS_URL.rpartition("/")
    return f"{base}/{int(index) + int(WORKER.removeprefix('gw'))}"


def _recreate_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_listener(process: subprocess.Popen, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def anvil_url():
    """A fresh anvil chain for the run (or TEST_CHAIN_RPC_URL if given)."""
    if os.environ.get("TEST_CHAIN_RPC_URL"):
        yield os.environ["TEST_CHAIN_RPC_URL"]
        return
    anvil = ROOT / "node_modules" / ".bin" / "anvil"
    if not anvil.exists():
        pytest.fail("anvil is missing: run `make setup` (npm ci installs @foundry-rs/anvil)")
    # The port is picked free, but another program may take it before anvil binds it: then anvil
    # exits, and we pick another.
    for _attempt in range(3):
        port = free_port()
        process = subprocess.Popen([str(anvil), "--port", str(port), "--silent"], stdout=subprocess.DEVNULL)
        if _wait_for_listener(process, port, seconds=20):
            break
        process.kill()
        process.wait()
    else:
        pytest.fail("anvil did not start")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def _database(tmp_path_factory):
    url = _worker_database_url()
    _recreate_database(url)
    return url


@pytest.fixture(scope="session")
def app(_database, anvil_url, tmp_path_factory):
    from sapien import create_app
    from sapien.extensions import db

    instance = tmp_path_factory.mktemp("instance")
    os.environ["SAPIEN_INSTANCE_DIR"] = str(instance)
    overrides = {
        "SAPIEN_ENV": "test",
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": _database.replace("postgresql://", "postgresql+psycopg://", 1),
        "REDIS_URL": _worker_redis_url(),
        "RATELIMIT_STORAGE_URI": _worker_redis_url(),
        "CHAIN_RPC_URL": anvil_url,
        "INSTANCE_DIR": str(instance),
        # Tests make the quests they read; the catalogue rotation has tests of its own that turn it on.
        "QUEST_ROTATION": False,
        # scrypt took about 0.1 s per sign-up and per sign-in, the suite's largest cost; tests that need a
        # slow check (two workers sharing one login limit) hash with scrypt themselves.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }
    application = create_app(overrides)
    application.config["TEST_OVERRIDES"] = overrides
    with application.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        db.session.remove()
    return application


# Set while a test that uses the app runs, cleared once its tables are truncated: if a teardown ever
# fails, the next test truncates before it starts instead of inheriting the rows.
_tables_dirty = False
TRUNCATE_ATTEMPTS = 3


def _terminate_other_connections(engine) -> int:
    """End every other session on the test database (a straggling request or thread holding a lock)."""
    with engine.begin() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    engine.dispose()  # the pool's own idle connections were among them
    return ended


def _truncate_all(app, lock_timeout: str = "2s", attempts: int = TRUNCATE_ATTEMPTS) -> None:
    """Empty every table. First wait for the live server to finish what it is answering; then TRUNCATE
    with a lock timeout, and if another session still holds a lock (a deadlock or a timeout), end the
    other sessions on the test database and try again."""
    global _tables_dirty
    from psycopg import errors
    from sqlalchemy.exc import OperationalError

    from sapien.extensions import db

    for server in _live_servers:
        server.wait_until_quiet()
    with app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        any_rows = " UNION ALL ".join(f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM {table})" for table in tables)
        db.session.remove()
        for attempt in range(1, attempts + 1):
            try:
                with db.engine.begin() as connection:
                    connection.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
                    # Truncating all 78 tables cost about 0.15 s a test; a test fills a few. Locked first, so
                    # nothing can write a row between finding the tables with rows and emptying them.
                    connection.execute(text(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE"))
                    filled = list(connection.execute(text(any_rows)).scalars())
                    if filled:
                        connection.execute(text(f"TRUNCATE {', '.join(filled)} RESTART IDENTITY CASCADE"))
                    connection.execute(text(  # ids start at 1 again, also in tables whose rows were rolled back
                        "SELECT setval(format('%I', sequencename)::regclass, 1, false) FROM pg_sequences"
                        " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                    ))
                break
            except OperationalError as error:
                if attempt == attempts or not isinstance(error.orig, errors.LockNotAvailable | errors.DeadlockDetected):
                    raise
                ended = _terminate_other_connections(db.engine)
                warnings.warn(
                    f"teardown: TRUNCATE met {type(error.orig).__name__}; ended {ended} other session(s)", stacklevel=1
                )
    _tables_dirty = False


def _start_clean(app) -> None:
    """Before a test: empty Redis, and the tables too if the last teardown did not manage to."""
    global _tables_dirty
    if _tables_dirty:
        _truncate_all(app)
    Redis.from_url(app.config["REDIS_URL"]).flushdb()
    _tables_dirty = True


@contextmanager
def _isolation(app) -> Iterator[None]:
    """One test's isolation: empty Redis before, empty tables after, and the app's config put back as it
    was, so a test that changes a setting cannot leak it into the next."""
    _start_clean(app)
    config = dict(app.config)
    try:
        yield
    finally:
        app.config.clear()
        app.config.update(config)
        _truncate_all(app)


@pytest.fixture(autouse=True)
def _isolated(request):
    """Every test that uses the app runs isolated (see `_isolation`)."""
    if "app" not in request.fixturenames:
        yield
        return
    with _isolation(request.getfixturevalue("app")):
        yield


@pytest.fixture
def make_app(app):
    """A second app on the same test database, for tests that must add routes or change config.

    Flask-Limiter's `init_app` writes the new app's settings (enabled, storage) onto the one shared
    `limiter`: they are put back afterwards, or a later test of the main app would run with them.
    """
    from sapien import create_app
    from sapien.extensions import limiter

    saved = dict(vars(limiter))

    def factory(**config):
        return create_app({**app.config["TEST_OVERRIDES"], **config})

    yield factory
    vars(limiter).clear()
    vars(limiter).update(saved)


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_conn(app):
    return Redis.from_url(app.config["REDIS_URL"])


@pytest.fixture(scope="session")
def deployed_addresses(app):
    """Our four contracts, deployed once per session on the session's anvil through the real deploy path;
    the rows are then forgotten (each test records the addresses in its own tables, see `chain`)."""
    from sqlalchemy import delete

    from sapien.chain.deploy import deploy_contracts
    from sapien.chain.models import ChainTransaction, ContractDeployment, SignerNonce
    from sapien.database import utcnow
    from sapien.extensions import db

    with app.app_context():
        addresses = {contract.name: contract.address for contract in deploy_contracts(utcnow())}
        for model in (ContractDeployment, ChainTransaction, SignerNonce):
            db.session.execute(delete(model))
        db.session.commit()
    return addresses


@dataclass
class Chain:
    w3: Web3
    chain_id: int
    addresses: dict[str, str]

    def contract(self, name: str):
        from sapien.chain.contracts import contract_at

        return contract_at(self.w3, name, self.addresses[name])

    def transact(self, function, sender: str):
        """Send `function` from an unlocked anvil account and return its receipt."""
        tx_hash = function.transact({"from": sender})
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)


@pytest.fixture
def chain(app_ctx, deployed_addresses):
    """The session's contracts, on a chain snapshot that is reverted after the test."""
    from sapien.chain.deploy import record_contracts
    from sapien.database import utcnow

    w3 = Web3(Web3.HTTPProvider(app_ctx.config["CHAIN_RPC_URL"]))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    record_contracts(w3.eth.chain_id, deployed_addresses, utcnow())
    try:
        yield Chain(w3, w3.eth.chain_id, dict(deployed_addresses))
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token_from(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return CSRF_META.search(page).group(1)


class Member:
    """A test user and a client signed in as them."""

    def __init__(self, app, username: str, role: str = "member", password: str = "correct horse battery"):
        from sapien.accounts import service as accounts
        from sapien.database import utcnow

        with app.app_context():
            user = accounts.sign_up(
                accounts.SignUp(username=username, email=f"{username}@example.org", password=password),
                now=utcnow(),
                role=role,
            )
            self.id = user.id
        self.username = username
        self.password = password
        self.client = app.test_client()
        token = csrf_token_from(self.client)
        response = self.client.post("/login", data={"login": username, "password": password, "csrf_token": token})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]

    def csrf(self, path: str = "/dashboard") -> str:
        return csrf_token_from(self.client, path)

    def post(self, path: str, data: dict | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def make_member(app):
    counter = iter(range(1, 10_000))

    def factory(username: str | None = None, role: str = "member") -> Member:
        return Member(app, username or f"member{next(counter)}", role=role)

    return factory


def decide_items(now=None) -> int:
    """The decision job's work (`jobs.quality.decide_items`) in this process, as the worker does it once the
    answers are in; returns how many answers it weighed. Needs an app context."""
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.quality.decisions import decide_awaiting_items

    weighed = decide_awaiting_items(now=now or utcnow())
    db.session.expire_all()
    return weighed


def verify_and_settle(*, pack_id: int | None = None, submission_ids=None, now=None) -> int:
    """Verify answers the way a reviewer's accept does (every accepted answer of the pack whose reward is
    still pending, or the given submissions), then run the settlement job twice (the second run pays
    nothing). Returns how many answers were paid. Needs an app context."""
    from sqlalchemy import select

    from jobs.labeling import settle_rewards
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import submissions
    from sapien.labeling.models import Submission

    now = now or utcnow()
    if submission_ids is None:
        query = select(Submission.id).where(Submission.status == "accepted", Submission.reward_state.in_(("pending", "not_verified")))
        if pack_id is not None:
            query = query.where(Submission.pack_id == pack_id)
        submission_ids = list(db.session.scalars(query.order_by(Submission.id)))
    for submission_id in submission_ids:
        submissions.accept_submission(submission_id, now=now)
    paid = settle_rewards()
    assert settle_rewards() == 0, "a second settlement run paid again"
    db.session.expire_all()
    return paid


@pytest.fixture(name="verify_and_settle")
def verify_and_settle_fixture(app):
    """`verify_and_settle` (above) for tests that take it as a fixture."""
    return verify_and_settle


# --- browser tests: a live server in a thread and a real chromium driven by Playwright -------
import select  # noqa: E402
import threading  # noqa: E402

from werkzeug.serving import ThreadedWSGIServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A loaded CI machine (two cores, chromium, the app and PostgreSQL) can take more than Playwright's
# default 5 s to show a change; the expectations still poll, so a passing test does not wait longer.
EXPECT_TIMEOUT_MS = 15_000


class LiveServer(ThreadedWSGIServer):
    """The app served from threads, counting the connections it is still answering, so a test's
    teardown can wait until the browser's last request (an htmx poll, say) has finished before it
    truncates the tables that request reads."""

    block_on_close = False  # each test already waited for quiet; closing must not hang on a stuck thread

    def __init__(self, app):
        super().__init__("127.0.0.1", 0, app)  # port 0: the kernel picks a free port, no race for it
        self._busy = 0
        self._changed = threading.Condition()

    def _enter(self) -> None:
        with self._changed:
            self._busy += 1

    def _leave(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()

    def _handle_request_noblock(self):
        # Counted from before accept(), so a connection is never in between the backlog and the count.
        self._enter()
        try:
            super()._handle_request_noblock()
        finally:
            self._leave()

    def process_request(self, request, client_address):
        self._enter()  # left when the connection's thread ends
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._leave()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._leave()

    def busy(self) -> bool:
        # The backlog first, the count second: a connection moves from one to the other, never out of both.
        waiting = bool(select.select([self.socket], [], [], 0)[0])
        with self._changed:
            return waiting or self._busy > 0

    def wait_until_quiet(self, seconds: float = 10) -> bool:
        deadline = time.monotonic() + seconds
        while self.busy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(timeout=min(remaining, 0.05))
        return True


_live_servers: list[LiveServer] = []


@pytest.fixture(scope="session")
def _live_server(app):
    server = LiveServer(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    _live_servers.append(server)
    yield server
    _live_servers.remove(server)
    server.shutdown()
    server.server_close()


@pytest.fixture
def live_server(request, _live_server):
    """The live server's URL. After the test every browser context still open is closed (its pages stop
    polling) and the server finishes what it is answering, before the tables are truncated."""
    yield f"http://127.0.0.1:{_live_server.server_port}"
    if "browser" in request.fixturenames:
        for context in list(request.getfixturevalue("browser").contexts):
            context.close()
    assert _live_server.wait_until_quiet(), "the live server was still answering 10 s after the browsers closed"


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="en-US", timezone_id="UTC", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message):
        # A 4xx answer (a 422 form re-render, a 403) is expected behaviour; the browser still logs it.
        if message.type == "error" and "responded with a status of 4" not in message.text:
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    # A CSP violation or a script error during the test is a bug the member would hit. Taken before the
    # close: a poll cut off by closing the page is the test's end, not the member's.
    during_test = list(errors)
    context.close()
    assert not during_test, during_test


@pytest.fixture
def second_page(browser, live_server):
    """Opens a page in a browser context of its own (a second person at another computer); every context it
    opened is closed at teardown, before the live server is, even when the test fails half way."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=live_server, locale="en-US", timezone_id="UTC")
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def pytest_report_header(config):
    return [
        f"database: {_worker_database_url()}",
        f"redis: {_worker_redis_url()}",
        f"chromium: {shutil.which('chromium') or 'missing'}",
    ]
