"""Rate limits hold across processes: a real two-worker gunicorn server on this test's Redis index shares
one login limit between its workers. With an in-memory store each worker would count alone and let twice
the limit through."""

from __future__ import annotations

import re
import threading

import pytest
import requests
from werkzeug.security import generate_password_hash

from sapien.accounts import service as accounts
from sapien.database import utcnow
from tests.gunicorn_server import running_gunicorn

LIMIT = 8
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture
def gunicorn_server(app):
    overrides = {**app.config["TEST_OVERRIDES"], "LOGIN_RATE_LIMIT": f"{LIMIT} per minute", "LOGIN_FREE_FAILURES": 1000}
    with running_gunicorn(overrides, workers=2) as base:
        yield base


def failed_login(base: str) -> requests.Response:
    session = requests.Session()
    token = CSRF.search(session.get(f"{base}/login", timeout=60).text).group(1)
    return session.post(f"{base}/login", data={"login": "ana", "password": "wrong password!", "csrf_token": token},
                        allow_redirects=False, timeout=60)


def in_pairs(base: str, pairs: int) -> list[requests.Response]:
    """Two sign-ins at once, `pairs` times: while one worker checks a password (scrypt, tens of milliseconds)
    the other worker takes the second connection, so both workers serve requests."""
    responses = []
    for _ in range(pairs):
        pair: list[requests.Response] = []
        threads = [threading.Thread(target=lambda answers=pair: answers.append(failed_login(base))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        responses += pair
    return responses


def test_two_gunicorn_workers_share_one_login_limit(app, gunicorn_server):
    with app.app_context():
        # scrypt, not the suite's cheap hash: the pairs rely on a check slow enough to keep one worker busy
        accounts.sign_up(accounts.SignUp(username="ana", email="ana@example.org", password="a long passphrase"), now=utcnow(),
                         password_hash=generate_password_hash("a long passphrase", method="scrypt"))
    allowed = in_pairs(gunicorn_server, LIMIT // 2)
    assert [response.status_code for response in allowed] == [422] * LIMIT
    workers = {response.headers["X-Worker-Pid"] for response in allowed}
    assert len(workers) == 2, workers  # each worker let fewer than LIMIT through itself...
    refused = in_pairs(gunicorn_server, 2)
    # ...and yet the next ones are refused, by whichever worker takes them: they share one count in Redis.
    assert [response.status_code for response in refused] == [429] * 4
    assert {response.headers["X-Worker-Pid"] for response in refused} == workers
