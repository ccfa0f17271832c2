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
from pathlib import Path

import psycopg
import pytest
from redis import Redis
from sqlalchemy import text

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


@pytest.fixture(scope="session")
def anvil_url():
    """A fresh anvil chain for the run (or TEST_CHAIN_RPC_URL if given)."""
    if os.environ.get("TEST_CHAIN_RPC_URL"):
        yield os.environ["TEST_CHAIN_RPC_URL"]
        return
    anvil = ROOT / "node_modules" / ".bin" / "anvil"
    if not anvil.exists():
        pytest.fail("anvil is missing: run `make setup` (npm ci installs @foundry-rs/anvil)")
    port = free_port()
    process = subprocess.Popen([str(anvil), "--port", str(port), "--silent"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
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
    }
    application = create_app(overrides)
    application.config["TEST_OVERRIDES"] = overrides
    with application.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        db.session.remove()
    return application


def _truncate_all(app) -> None:
    from sapien.extensions import db

    with app.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        db.session.remove()
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def _isolated(request):
    """Empty Redis before each test and empty tables after it (only for tests that use the app)."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    Redis.from_url(app.config["REDIS_URL"]).flushdb()
    yield
    _truncate_all(app)


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


# --- browser tests: a live server in a thread and a real chromium driven by Playwright -------
import threading  # noqa: E402

from werkzeug.serving import make_server  # noqa: E402

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


@pytest.fixture(scope="session")
def live_server(app):
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

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
    context.close()
    # A CSP violation or a script error is a bug the member would hit.
    assert not errors, errors


def pytest_report_header(config):
    return [
        f"database: {_worker_database_url()}",
        f"redis: {_worker_redis_url()}",
        f"chromium: {shutil.which('chromium') or 'missing'}",
    ]
