"""The default rate limit, counted in the one Redis round trip of each request (sapien/request_pipeline.py)."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from tests.conftest import CSRF_META


def test_the_default_limit_is_shared_by_every_process(make_app):
    """Two apps on one Redis (two gunicorn workers, two machines) count against one window per address."""
    first, second = make_app(DEFAULT_RATE_LIMIT="3 per minute"), make_app(DEFAULT_RATE_LIMIT="3 per minute")
    answers = [app.test_client().get("/login").status_code for app in (first, second, first, second)]
    assert answers == [200, 200, 200, 429]
    page = second.test_client().get("/login")
    assert page.status_code == 429
    assert "Too many requests" in page.get_data(as_text=True)


def test_the_limit_counts_per_address_and_route_and_spares_exempt_ones(make_app):
    app = make_app(DEFAULT_RATE_LIMIT="2 per minute")
    client = app.test_client()
    assert [client.get("/login").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/").status_code == 200  # another route has a window of its own
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert other.get("/login").status_code == 200  # and so does another address
    assert all(client.get("/static/css/app.css").status_code == 200 for _ in range(4))  # static files are exempt
    assert all(client.get("/healthz").status_code != 429 for _ in range(4))  # @limiter.exempt


def test_a_signed_in_members_cached_page_is_limited_too(make_app, make_member):
    make_member("ana")
    app = make_app(DEFAULT_RATE_LIMIT="3 per minute")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"login": "ana", "password": "correct horse battery", "csrf_token": CSRF_META.search(page).group(1)})
    assert response.status_code == 303
    # The first renders (and shows the welcome flash), the next two come from the page cache.
    assert [client.get("/dashboard").status_code for _ in range(4)] == [200, 200, 200, 429]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fresh_redis():
    """A Redis of this test's own, which has never seen the rate-limit script."""
    port = _free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def test_a_redis_that_lost_the_script_still_counts(make_app, fresh_redis):
    app = make_app(DEFAULT_RATE_LIMIT="2 per minute", REDIS_URL=fresh_redis, RATELIMIT_STORAGE_URI=fresh_redis)
    client = app.test_client()
    assert [client.get("/login").status_code for _ in range(3)] == [200, 200, 429]


def test_a_redis_outage_is_no_500_on_an_exempt_route_for_a_signed_in_member(make_app, make_member):
    """The round trip only prefetches there, and a prefetch that fails is no error: /healthz still says 503."""
    make_member("ana")
    app = make_app(DEFAULT_RATE_LIMIT="3 per minute")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"login": "ana", "password": "correct horse battery", "csrf_token": CSRF_META.search(page).group(1)})
    app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens there
    assert client.get("/healthz").status_code == 503
