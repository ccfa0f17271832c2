"""The logged-in dashboard under gunicorn with 2 workers, beside a trivial Flask page in the same run."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from bench.harness import Figure, flask, gunicorn, recreate_database, wrk

GOAL_SHARE = 0.5
# wrk sends the same User-Agent as the login, as a browser does: Flask-Login's session protection would
# otherwise rewrite the session cookie on every request, which no browser session pays.
USER_AGENT = "sapien-bench"


def signed_in_cookie(base: str, username: str, password: str) -> str:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", USER_AGENT)]
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"login": username, "password": password, "csrf_token": token}).encode()
    opener.open(base + "/login", data=data)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def run() -> list[Figure]:
    from sapien.demo import DEMO_LOGINS, DEMO_PASSWORD

    recreate_database()
    flask("db", "upgrade")
    flask("demo", "seed")
    with gunicorn("bench.trivial_app:app") as base:
        wrk(base + "/static-page", seconds=3)  # warm up
        static = wrk(base + "/static-page")
        table = wrk(base + "/table")
    with gunicorn("app:app") as base:
        cookie = signed_in_cookie(base, DEMO_LOGINS["member"], DEMO_PASSWORD)
        headers = {"Cookie": cookie, "User-Agent": USER_AGENT}
        wrk(base + "/dashboard", seconds=3, headers=headers)
        dashboard = wrk(base + "/dashboard", headers=headers)
    from bench.request_cpu import measure

    cpu_dashboard, cpu_static = measure()
    if dashboard.non_2xx:
        raise RuntimeError(f"{dashboard.non_2xx} dashboard requests failed: the benchmark measured errors")
    share = dashboard.requests_per_second / static.requests_per_second
    name = "Logged-in dashboard, gunicorn 2 workers, PostgreSQL"
    return [
        Figure(name, "requests/s", round(dashboard.requests_per_second), "req/s",
               ceiling=f"{static.requests_per_second:.0f} (static page), {table.requests_per_second:.0f} (50-row template)",
               goal=f">= {GOAL_SHARE:.0%} of the static-page ceiling", met=share >= GOAL_SHARE),
        Figure(name, "share of the static-page ceiling", round(100 * share, 1), "%", goal=f">= {GOAL_SHARE:.0%}", met=share >= GOAL_SHARE),
        Figure(name, "p50 latency", round(dashboard.p50_ms, 2), "ms", ceiling=f"{static.p50_ms:.2f} (static page)"),
        Figure(name, "p99 latency", round(dashboard.p99_ms, 2), "ms", ceiling=f"{static.p99_ms:.2f} (static page)"),
        Figure(name, "CPU per cached request, in process (bench.request_cpu)", round(cpu_dashboard.cpu_ms, 3), "ms",
               ceiling=f"{cpu_static.cpu_ms:.3f} (static page, in process)"),
    ]
