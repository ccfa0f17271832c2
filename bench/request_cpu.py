"""The CPU one request costs, in process: the cached dashboard against the smallest Flask page.

No HTTP server and no load generator share the measurement, so the figure is steady on a busy machine
(wrk's requests/s is not). Each request is one WSGI call on a prepared environ, as gunicorn makes it.

    .venv/bin/python -m bench.request_cpu                       # CPU ms per request, both pages
    .venv/bin/python -m bench.request_cpu --profile out.txt     # and a cProfile summary of the dashboard
    .venv/bin/python -m bench.request_cpu --serve-for 30 &        # cached dashboard requests only, for a
    .venv/bin/py-spy record --pid $! --duration 20 -o out.svg     # sampling profiler attached once warm
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.harness import BENCH_DATABASE_URL, app_env, flask, recreate_database

# A browser sends the same User-Agent on every request; Flask-Login's session protection rewrites the
# session cookie of a request whose address or agent differ from the login's.
USER_AGENT = "sapien-bench"


@dataclass
class Cost:
    cpu_ms: float  # process CPU per request
    wall_ms: float


def ensure_demo_database() -> None:
    """The benchmark database with the demo data, made only when it is not there yet."""
    import psycopg

    try:
        with psycopg.connect(BENCH_DATABASE_URL) as connection:
            if connection.execute("SELECT 1 FROM users WHERE username = 'demo_member'").fetchone():
                return
    except psycopg.Error:
        pass
    recreate_database()
    flask("db", "upgrade")
    flask("demo", "seed")


def sapien_app():
    os.environ.update(app_env())
    from sapien import create_app

    return create_app()


def signed_in_cookie(app, username: str, password: str) -> str:
    import re

    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=USER_AGENT, REMOTE_ADDR="127.0.0.1")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post("/login", data={"login": username, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.status
    client.get(response.headers["Location"])  # shows (and so drops) the welcome flash, as a browser would
    cookie = client.get_cookie("session")
    return f"session={cookie.value}"


def wsgi_call(app, path: str, cookie: str = "") -> Callable[[], bytes]:
    """One request as gunicorn hands it to the app: a prepared environ, the body read, the iterable closed."""
    from werkzeug.test import EnvironBuilder

    headers = {"User-Agent": USER_AGENT, **({"Cookie": cookie} if cookie else {})}
    environ = EnvironBuilder(path=path, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
    status: list[str] = []

    def start_response(code, _headers, _exc_info=None):
        status.append(code)

    def call() -> bytes:
        status.clear()
        body_iter = app(dict(environ), start_response)
        try:
            body = b"".join(body_iter)
        finally:
            getattr(body_iter, "close", lambda: None)()
        if not status[0].startswith("200"):
            raise RuntimeError(f"{path} answered {status[0]}")
        return body

    return call


def cost(call: Callable[[], bytes], requests: int) -> Cost:
    for _ in range(min(200, requests)):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        call()
    return Cost(1000 * (time.process_time() - cpu) / requests, 1000 * (time.perf_counter() - wall) / requests)


def dashboard_call(app) -> Callable[[], bytes]:
    from sapien.demo import DEMO_LOGINS, DEMO_PASSWORD

    call = wsgi_call(app, "/dashboard", signed_in_cookie(app, DEMO_LOGINS["member"], DEMO_PASSWORD))
    call()  # rendered once and cached; every later call is served from the page cache
    return call


def measure(requests: int = 2000) -> tuple[Cost, Cost]:
    """(the cached dashboard, the trivial page) CPU and wall time per request."""
    from bench.trivial_app import app as trivial

    ensure_demo_database()
    dashboard = cost(dashboard_call(sapien_app()), requests)
    static = cost(wsgi_call(trivial, "/static-page"), requests)
    return dashboard, static


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", help="write a cProfile summary of the cached dashboard requests here")
    parser.add_argument("--serve-for", type=float, help="only make cached dashboard requests, for this many seconds once warm")
    args = parser.parse_args()
    if args.serve_for:
        ensure_demo_database()
        call = dashboard_call(sapien_app())
        for _ in range(200):
            call()
        print("warm", flush=True)
        deadline = time.monotonic() + args.serve_for
        while time.monotonic() < deadline:
            call()
        return
    if args.profile:
        import cProfile
        import io
        import pstats

        ensure_demo_database()
        call = dashboard_call(sapien_app())
        for _ in range(200):
            call()
        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting on Redis
        profiler.runcall(lambda: [call() for _ in range(args.requests)])
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
        out.write(f"cProfile (CPU time) of {args.requests} cached GET /dashboard requests (demo_member), in process\n\n")
        stats.print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
        with open(args.profile, "w", encoding="utf-8") as handle:
            handle.write(out.getvalue())
        return
    dashboard, static = measure(args.requests)
    print(f"cached dashboard: {dashboard.cpu_ms:.3f} ms CPU, {dashboard.wall_ms:.3f} ms wall per request")
    print(f"trivial page:     {static.cpu_ms:.3f} ms CPU, {static.wall_ms:.3f} ms wall per request")
    print(f"dashboard / trivial CPU: {dashboard.cpu_ms / static.cpu_ms:.1f}x")


if __name__ == "__main__":
    main()
