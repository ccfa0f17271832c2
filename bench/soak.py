"""`make soak`: labeling, reviews, aggregation and board reads together, for SOAK_SECONDS (600 by default),
against a real gunicorn server (2 workers) and a real RQ worker on PostgreSQL; then the invariants.

Every actor goes over HTTP like a browser would:
- members answer item after item through the work page's htmx form (`labeling`);
- reviewers (the reviewer role) claim the next review, open it and accept 9 in 10, reject the rest (`reviews`);
- a moderator presses "Aggregate" on the pack every SOAK_AGGREGATE_EVERY seconds (15), which queues the job
  the worker runs (`aggregation`);
- members read the boards and their own rank (`boards`).
At the end the worker drains its queues and `sapien.invariants.broken_invariants()` runs. The report gives
each actor's requests, errors and p50/p99, the queue depth after the drain, and every invariant broken; the
exit status is 1 if any request failed or any invariant broke.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import time
from datetime import timedelta

from bench.harness import (
    BENCH_REDIS_URL,
    ROOT,
    VENV_BIN,
    app_env,
    flask,
    gunicorn,
    recreate_database,
    wait_for_idle_worker,
)
from bench.labeling_http import CSRF, LEASE_ID, PACK_SLUG, PASSWORD, _app, percentile, seed

REVIEWERS = 4
DECIDE = re.compile(r'action="/review/(\d+)/decide"')


def seed_staff() -> None:
    from sapien.accounts import service as accounts
    from sapien.database import utcnow

    app = _app()
    with app.test_request_context():
        password_hash = accounts.hash_password(PASSWORD)
        for number in range(REVIEWERS):
            accounts.sign_up(accounts.SignUp(f"soakreviewer{number}", f"soakreviewer{number}@bench.example", ""), now=utcnow() - timedelta(days=1),
                             password_hash=password_hash, role="reviewer")
        accounts.sign_up(accounts.SignUp("soakmod", "soakmod@bench.example", ""), now=utcnow() - timedelta(days=1),
                         password_hash=password_hash, role="moderator")


class Stats:
    def __init__(self):
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.samples: dict[str, str] = {}

    def record(self, actor: str, started: float, status: int, ok: tuple[int, ...] = (200,)) -> None:
        self.latencies.setdefault(actor, []).append((time.perf_counter() - started) * 1000)
        if status not in ok:
            self.errors[actor] = self.errors.get(actor, 0) + 1
            self.samples.setdefault(actor, f"HTTP {status}")


async def _client(base: str, username: str):
    import aiohttp

    client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(limit=0))
    page = await (await client.get(base + "/login")).text()
    token = CSRF.search(page).group(1)
    async with client.post(base + "/login", data={"login": username, "password": PASSWORD, "csrf_token": token}, allow_redirects=False) as response:
        if response.status != 303:
            raise RuntimeError(f"{username} could not sign in: HTTP {response.status}")
    return client


async def _token(client, url: str) -> str:
    async with client.get(url) as response:
        return CSRF.search(await response.text()).group(1)


async def labeler(base: str, username: str, stop_at: float, stats: Stats) -> None:
    client = await _client(base, username)
    rng = random.Random(username)
    try:
        async with client.get(f"{base}/packs/{PACK_SLUG}/work") as response:
            page = await response.text()
        token, lease = CSRF.search(page).group(1), LEASE_ID.search(page)
        if lease is None:  # no item held yet: the page's Start form takes one (a GET never does)
            async with client.post(f"{base}/packs/{PACK_SLUG}/work/start", data={"csrf_token": token}) as response:
                lease = LEASE_ID.search(await response.text())
        while lease is not None and time.perf_counter() < stop_at:
            started = time.perf_counter()
            async with client.post(f"{base}/packs/{PACK_SLUG}/work", data={"lease_id": lease.group(1), "label": "pos" if rng.random() < 0.85 else "neg",
                                   "csrf_token": token}, headers={"HX-Request": "true", "X-CSRFToken": token}) as response:
                body = await response.text()
                stats.record("labeling", started, response.status)
            lease = LEASE_ID.search(body)
    finally:
        await client.close()


async def reviewer(base: str, username: str, stop_at: float, stats: Stats) -> None:
    client = await _client(base, username)
    rng = random.Random(username)
    try:
        token = await _token(client, base + "/review")
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            async with client.post(base + "/review/claim", data={"csrf_token": token}, allow_redirects=False) as response:
                stats.record("reviews", started, response.status, ok=(303,))
            started = time.perf_counter()
            async with client.get(base + "/review") as response:
                page = await response.text()
                stats.record("reviews", started, response.status)
            found = DECIDE.search(page)
            if found is None:
                await asyncio.sleep(0.5)  # nothing to review yet
                continue
            accept = rng.random() < 0.9
            data = {"csrf_token": token, "outcome": "accepted" if accept else "rejected", "reason": "" if accept else "Soak reviewer: wrong label."}
            started = time.perf_counter()
            async with client.post(f"{base}/review/{found.group(1)}/decide", data=data, allow_redirects=False) as response:
                stats.record("reviews", started, response.status, ok=(303,))
    finally:
        await client.close()


async def moderator(base: str, stop_at: float, stats: Stats, every: float) -> None:
    client = await _client(base, "soakmod")
    try:
        url = f"{base}/manage/packs/{PACK_SLUG}/results"
        token = await _token(client, url)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            async with client.post(url + "/aggregate", data={"csrf_token": token, "method": "dawid_skene"}, allow_redirects=False) as response:
                stats.record("aggregation", started, response.status, ok=(303,))
            await asyncio.sleep(every)
    finally:
        await client.close()


async def board_reader(base: str, username: str, stop_at: float, stats: Stats) -> None:
    client = await _client(base, username)
    pages = ["/leaderboards/", "/leaderboards/?period=week", "/leaderboards/me"]
    try:
        turn = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            async with client.get(base + pages[turn % len(pages)], headers={"HX-Request": "true"}) as response:
                await response.read()
                stats.record("boards", started, response.status)
            turn += 1
            await asyncio.sleep(0.05)
    finally:
        await client.close()


async def _soak(base: str, seconds: float, labelers: int, readers: int) -> Stats:
    stats = Stats()
    stop_at = time.perf_counter() + seconds
    actors = [labeler(base, f"bench{n}", stop_at, stats) for n in range(labelers)]
    actors += [reviewer(base, f"soakreviewer{n}", stop_at, stats) for n in range(REVIEWERS)]
    actors += [moderator(base, stop_at, stats, float(os.environ.get("SOAK_AGGREGATE_EVERY", "15")))]
    actors += [board_reader(base, f"bench{50 + n}", stop_at, stats) for n in range(readers)]
    await asyncio.gather(*actors)
    return stats


def queue_depth() -> int:
    from redis import Redis
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from sapien.queue import QUEUE_NAMES

    connection = Redis.from_url(BENCH_REDIS_URL)
    return sum(Queue(name, connection=connection).count + StartedJobRegistry(name, connection=connection).count for name in QUEUE_NAMES)


def invariants() -> list[str]:
    from sapien.extensions import db
    from sapien.invariants import broken_invariants

    app = _app()
    with app.app_context():
        db.session.remove()
        return broken_invariants()


def main() -> int:
    from redis import Redis

    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    labelers = int(os.environ.get("SOAK_LABELERS", "6"))
    readers = int(os.environ.get("SOAK_BOARD_READERS", "2"))
    print(f"[soak] {seconds:.0f} s: {labelers} labelers, {REVIEWERS} reviewers, 1 moderator aggregating, {readers} board readers", flush=True)
    recreate_database()
    Redis.from_url(BENCH_REDIS_URL).flushdb()
    flask("db", "upgrade")
    seed()
    seed_staff()
    env = app_env()
    worker = subprocess.Popen([str(VENV_BIN / "python"), "-m", "jobs.worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for_idle_worker()
        with gunicorn("app:app") as base:
            started = time.perf_counter()
            stats = asyncio.run(_soak(base, seconds, labelers, readers))
            elapsed = time.perf_counter() - started
        wait_for_idle_worker()  # the queued aggregations and syncs drain
        depth = queue_depth()
        broken = invariants()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    print(f"[soak] ran {elapsed:.0f} s", flush=True)
    print("| actor | requests | errors | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for actor in ("labeling", "reviews", "aggregation", "boards"):
        values = stats.latencies.get(actor, [])
        errors = stats.errors.get(actor, 0)
        sample = f" ({stats.samples[actor]})" if actor in stats.samples else ""
        print(f"| {actor} | {len(values)} | {errors}{sample} | {len(values) / elapsed:.1f} | {percentile(values, 0.5):.1f} | {percentile(values, 0.99):.1f} |")
    print(f"queue depth after the drain: {depth}")
    print("invariants: " + ("all hold" if not broken else f"{len(broken)} broken"))
    for line in broken:
        print(f"  - {line}")
    failed = bool(broken) or any(stats.errors.values()) or depth != 0 or not stats.latencies.get("labeling")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
