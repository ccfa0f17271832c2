"""Labeling over HTTP: members leasing and answering items through 2 gunicorn workers on PostgreSQL.

Every simulated member (each with earlier answers in another pack: `seed_history`) signs in, opens a pack's
work page and then answers item after item the way the work page's htmx form does: one POST per answer,
whose response carries the feedback and the next item (a fresh lease). Beside the load the second stage runs in its own processes: an RQ worker (the lease
sweep; the decision job, which weighs the accepted answers a batch at a time into verified labels and new
targets; the settlement job, which pays the verified ones) and a QA loop that decides every submission
sampled for review (accepting most, rejecting some).

Figures: accepted submissions per second (goal >= 150) and the p99 latency of an answer (goal < 100 ms),
beside the ceiling: the same machine's trivial Flask page under the same gunicorn (wrk). Once the worker has
drained what the load queued, `broken_invariants()` runs and its count (goal 0) is a figure too. So does the
CPU each group of processes used per accepted answer during the window (bench/cpu_accounting.py), beside
the CPU the goal leaves per answer on this machine's cores.
BENCH_LABELING_SECONDS sets the measured window, BENCH_LABELING_CONCURRENCY the members answering at once.
The load starts once the RQ worker has finished its start-up work, after a CHECKPOINT has written the seed's
rows out. On this VM the p99 is set by stalls of
0.3–1.5 s every few seconds in which every in-flight answer waits at once: they are the commits waiting for
the WAL flush (they vanish with synchronous_commit off, which the ledger cannot use; no lock waits over
200 ms, no slow Redis command and no garbage-collection pause were seen in them).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import urlencode

from bench.cpu_accounting import CpuWindow, matching, postgres_server_processes, with_descendants
from bench.harness import (
    BENCH_DATABASE_URL,
    BENCH_REDIS_URL,
    ROOT,
    VENV_BIN,
    Figure,
    app_env,
    flask,
    gunicorn,
    recreate_database,
    wait_for_idle_worker,
    wrk,
)

NAME = "Labeling submissions over HTTP, gunicorn 2 workers, PostgreSQL"
GOAL_RATE = 150.0
GOAL_P99_MS = 100.0
MEMBERS = 60
ITEMS = 6000
GOLD_ITEMS = 600
HISTORY_ANSWERS = 18_000
PACK_SLUG = "bench-sentiment"
PASSWORD = "bench-password-123"
LEASE_ID = re.compile(r'name="lease_id" value="(\d+)"')
LEASE_ID_BYTES = re.compile(rb'name="lease_id" value="(\d+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SET_COOKIE = re.compile(rb"(?im)^set-cookie: *([^=;\s]+)=([^;\r\n]*)")


def _app():
    from sapien import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": BENCH_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        "REDIS_URL": BENCH_REDIS_URL,
    })


def seed() -> None:
    """Members, a campaign and a pack with ordinary and gold items (10 % gold, 10 % sampled for review)."""
    from sqlalchemy import insert

    from sapien.accounts import service as accounts
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import packs
    from sapien.labeling.models import Item

    app = _app()
    with app.test_request_context():
        now = utcnow()
        password_hash = accounts.hash_password(PASSWORD)
        for number in range(MEMBERS):
            accounts.sign_up(accounts.SignUp(f"bench{number}", f"bench{number}@bench.example", ""), now=now - timedelta(days=1),
                             password_hash=password_hash)
        campaign = packs.create_campaign(name="Bench campaign", kind="enterprise", actor_id=None, now=now)
        pack = packs.create_pack(campaign.id, {
            "name": "Bench sentiment", "slug": PACK_SLUG, "task_type": "text_classification", "label_options": ["pos", "neg", "mixed"],
            "labels_per_item": 3, "max_labels_per_item": 5, "gold_rate_percent": 10, "review_rate_percent": 10,
            "daily_cap": 100_000, "reward_points": 10, "reward_xp": 5, "difficulty": "intermediate",
        }, actor_id=None, now=now)
        rng = random.Random(7)
        rows = [
            {"pack_id": pack.id, "external_id": f"t{n}", "payload": {"text": f"Review {n}: the film was {rng.choice(['great', 'dull', 'fine'])}."},
             "is_gold": False, "is_exam": False, "gold_answer": None, "gold_explanation": "", "status": "open",
             "labels_target": 3, "slots_taken": 0, "created_at": now}
            for n in range(ITEMS)
        ]
        rows += [
            {"pack_id": pack.id, "external_id": f"g{n}", "payload": {"text": f"Check {n}: a wonderful, moving film."},
             "is_gold": True, "is_exam": False, "gold_answer": {"labels": ["pos" if n % 10 else "neg"]},
             "gold_explanation": "Wonderful and moving are praise.", "status": "open", "labels_target": 3, "slots_taken": 0,
             "created_at": now}
            for n in range(GOLD_ITEMS)
        ]
        db.session.execute(insert(Item), rows)
        db.session.commit()
        packs.publish_pack(pack.id, now=now)  # new packs are drafts until published
        seed_history(campaign.id, now - timedelta(days=2))
        db.session.execute(db.text("ANALYZE"))
        db.session.commit()
        # The seed's rows written out now: the checkpoint they would bring must not fall in the measured
        # window (a live site's checkpoints write what its own load dirtied, spread over minutes).
        db.session.execute(db.text("CHECKPOINT"))


def seed_history(campaign_id: int, when) -> None:
    """The members' earlier work in another pack, finished and paid: HISTORY_ANSWERS answers (leases and
    submissions) from two days ago, and the progress rows that count them. A platform in use has such rows; without them PostgreSQL's statistics
    describe empty lease and submission tables, and the plans it keeps for the prepared statements (seq
    scans) get slower with every answer the load adds, which no live site sees."""
    from sqlalchemy import insert, select

    from sapien.accounts.models import User
    from sapien.extensions import db
    from sapien.labeling import packs
    from sapien.labeling.models import Item, Lease, Submission
    from sapien.progression.models import MemberProgress

    pack = packs.create_pack(campaign_id, {
        "name": "Bench history", "slug": f"{PACK_SLUG}-history", "task_type": "text_classification", "label_options": ["pos", "neg"],
        "labels_per_item": 3, "daily_cap": 100_000, "reward_points": 10, "reward_xp": 5,
    }, actor_id=None, now=when)
    member_ids = list(db.session.scalars(select(User.id).where(User.username.like("bench%")).order_by(User.id)))
    items = HISTORY_ANSWERS // 3
    item_ids = list(db.session.scalars(insert(Item).returning(Item.id), [
        {"pack_id": pack.id, "external_id": f"h{n}", "payload": {"text": f"Earlier review {n}."}, "is_gold": False, "is_exam": False,
         "gold_answer": None, "gold_explanation": "", "status": "retired", "labels_target": 3, "slots_taken": 3, "created_at": when}
        for n in range(items)
    ]))
    answerers = [(item_id, member_ids[(n * 3 + k) % len(member_ids)]) for n, item_id in enumerate(item_ids) for k in range(3)]
    lease_ids = list(db.session.scalars(insert(Lease).returning(Lease.id, sort_by_parameter_order=True), [
        {"item_id": item_id, "pack_id": pack.id, "user_id": user_id, "status": "submitted", "created_at": when,
         "expires_at": when + timedelta(minutes=15)}
        for item_id, user_id in answerers
    ]))
    db.session.execute(insert(Submission), [
        {"lease_id": lease_id, "item_id": item_id, "pack_id": pack.id, "user_id": user_id, "answer": {"labels": ["pos"]},
         "status": "accepted", "is_gold": False, "paid_points": 10, "paid_xp": 5, "reward_state": "paid", "verified_at": when,
         "paid_at": when, "decided_at": when, "created_at": when}
        for lease_id, (item_id, user_id) in zip(lease_ids, answerers, strict=True)
    ])
    answered = Counter(user_id for _item_id, user_id in answerers)
    db.session.execute(insert(MemberProgress), [  # their progress rows count that work (no XP was posted for it: level 1)
        {"user_id": user_id, "labels_accepted": count, "current_streak": 1, "longest_streak": 1, "last_active_day": when.date(),
         "last_active_at": when, "timezone": "UTC", "updated_at": when}
        for user_id, count in answered.items()
    ])
    db.session.commit()


def review_loop(seconds: float) -> None:
    """The QA stage beside the load: decide pending submissions (9 in 10 accepted) as they come in."""
    from sqlalchemy import select

    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.labeling import submissions
    from sapien.labeling.models import Submission

    app = _app()
    deadline = time.monotonic() + seconds
    decided = 0
    with app.test_request_context():
        while time.monotonic() < deadline:
            pending = list(db.session.scalars(
                select(Submission.id).where(Submission.status == "pending_review").order_by(Submission.id).limit(50)
            ))
            db.session.rollback()
            for submission_id in pending:
                if submission_id % 10:
                    submissions.accept_submission(submission_id, now=utcnow())
                else:
                    submissions.reject_submission(submission_id, reason="Bench reviewer: wrong label.", now=utcnow())
                decided += 1
            if not pending:
                time.sleep(0.2)
    print(f"review loop decided {decided}", flush=True)


async def _sign_in(base: str, username: str):
    """A member signed in on the work page: [session cookies, csrf token, current lease id]."""
    import aiohttp
    from yarl import URL

    client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(limit=0))
    page = await (await client.get(base + "/login")).text()
    token = CSRF.search(page).group(1)
    await client.post(base + "/login", data={"login": username, "password": PASSWORD, "csrf_token": token}, allow_redirects=False)
    page = await (await client.get(f"{base}/packs/{PACK_SLUG}/work")).text()
    if LEASE_ID.search(page) is None:  # no item held yet: the page's Start form takes one (a GET never does)
        token = CSRF.search(page).group(1)
        page = await (await client.post(f"{base}/packs/{PACK_SLUG}/work/start", data={"csrf_token": token})).text()
    cookies = {name: morsel.value for name, morsel in client.cookie_jar.filter_cookies(URL(base)).items()}
    await client.close()
    return [cookies, CSRF.search(page).group(1), LEASE_ID.search(page).group(1)]


async def _post_answer(base: str, state: list, label: str) -> tuple[int, bytes]:
    """One answer as the work page's htmx form sends it, over a bare HTTP/1.1 connection: the load generator
    shares the machine's cores with the app, so it should cost as little CPU as it can (an HTTP client
    library spent about a millisecond per answer, 7 % of the machine). The sync workers close the
    connection after each response, so the body is whatever comes before the close."""
    cookies, token, lease_id = state
    host, port = base.removeprefix("http://").split(":")
    body = urlencode({"lease_id": lease_id, "label": label, "csrf_token": token}).encode()
    head = (
        f"POST /packs/{PACK_SLUG}/work HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        f"Cookie: {'; '.join(f'{name}={value}' for name, value in cookies.items())}\r\n"
        f"HX-Request: true\r\nX-CSRFToken: {token}\r\nConnection: close\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    with socket.socket() as connection:  # the loop's socket calls: no stream or transport objects per answer
        connection.setblocking(False)
        await loop.sock_connect(connection, (host, int(port)))
        await loop.sock_sendall(connection, head.encode() + body)
        chunks = []
        while chunk := await loop.sock_recv(connection, 65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    status = int(response[9:12]) if response.startswith(b"HTTP/1.1 ") else 0
    headers, _, content = response.partition(b"\r\n\r\n")
    for name, value in SET_COOKIE.findall(headers):  # a refreshed session cookie replaces the old one
        cookies[name.decode()] = value.decode()
    return status, content


async def _answer_loop(base: str, members: list, start_at: float, stop_at: float, latencies: list[float], counters: dict) -> None:
    """Answer item after item, playing `members` in turn; answers before `start_at` only warm up."""
    rng = random.Random()
    turn = 0
    while time.perf_counter() < stop_at:
        state = members[turn % len(members)]
        turn += 1
        started = time.perf_counter()
        status, body = await _post_answer(base, state, "pos" if rng.random() < 0.9 else "neg")
        if started >= start_at:
            latencies.append((time.perf_counter() - started) * 1000)
            counters["requests"] += 1
            counters["errors"] += status != 200
        found = LEASE_ID_BYTES.search(body)
        if found is None:  # out of work for this member: the measurement would stall, so say so
            counters["no_item"] += 1
            return
        state[2] = found.group(1).decode()


async def _load(base: str, seconds: float, concurrency: int, warmup: float = 5.0, cpu: CpuWindow | None = None):
    from sapien.database import utcnow

    states = await asyncio.gather(*(_sign_in(base, f"bench{n}") for n in range(MEMBERS)))
    groups = [states[i::concurrency] for i in range(concurrency)]
    latencies: list[float] = []
    counters = {"requests": 0, "errors": 0, "no_item": 0}
    now_wall, now_utc = time.perf_counter(), utcnow()
    start_at, stop_at = now_wall + warmup, now_wall + warmup + seconds
    loops = [_answer_loop(base, group, start_at, stop_at, latencies, counters) for group in groups]
    await asyncio.gather(*loops, *([_measure_cpu(cpu, start_at, stop_at)] if cpu else []))
    window = (now_utc + timedelta(seconds=warmup), now_utc + timedelta(seconds=warmup + seconds))
    return latencies, counters, window


async def _measure_cpu(cpu: CpuWindow, start_at: float, stop_at: float) -> None:
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    cpu.start()
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    cpu.stop()


def _cpu_window(base: str, worker: subprocess.Popen, reviewer: subprocess.Popen) -> CpuWindow:
    """The processes that share the machine during the load, in groups (see bench/cpu_accounting.py)."""
    database = BENCH_DATABASE_URL.rsplit("/", 1)[1]

    return CpuWindow(
        groups={
            "app (2 gunicorn workers)": matching("gunicorn", base.removeprefix("http://")),
            "PostgreSQL backends": matching("postgres: ", f" {database} "),
            "PostgreSQL server processes": postgres_server_processes,
            "RQ worker and its jobs": with_descendants(worker.pid),
            "QA review loop": lambda: [reviewer.pid],
            "load generator": lambda: [os.getpid()],
            "Redis": matching("redis-server"),
        },
        reaped_children={"RQ worker and its jobs"},
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


def _count_submissions(since, until) -> tuple[int, int]:
    from sqlalchemy import func, select

    from sapien.extensions import db
    from sapien.labeling.models import Submission

    app = _app()
    with app.app_context():
        window = (Submission.created_at >= since, Submission.created_at < until)
        total = db.session.scalar(select(func.count()).select_from(Submission).where(*window))
        accepted = db.session.scalar(select(func.count()).select_from(Submission).where(*window, Submission.status == "accepted"))
        return int(total), int(accepted)


def run() -> list[Figure]:
    from redis import Redis

    seconds = float(os.environ.get("BENCH_LABELING_SECONDS", "20"))
    concurrency = int(os.environ.get("BENCH_LABELING_CONCURRENCY", "6"))
    recreate_database()
    Redis.from_url(BENCH_REDIS_URL).flushdb()
    flask("db", "upgrade")
    seed()
    with gunicorn("bench.trivial_app:app") as base:
        wrk(base + "/static-page", seconds=3)
        static = wrk(base + "/static-page", seconds=10, connections=concurrency)
    env = app_env()
    worker = subprocess.Popen([str(VENV_BIN / "python"), "-m", "jobs.worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for_idle_worker()
        with gunicorn("app:app") as base:
            reviewer = subprocess.Popen(
                [str(VENV_BIN / "python"), "-m", "bench.labeling_http", "review-loop", str(seconds + 40)],
                cwd=ROOT, env=env,
            )
            try:
                cpu = _cpu_window(base, worker, reviewer)
                latencies, counters, (window_start, window_end) = asyncio.run(_load(base, seconds, concurrency, cpu=cpu))
            finally:
                reviewer.wait(timeout=seconds + 120)
        wait_for_idle_worker()  # the jobs the load queued run before the check
        broken = broken_after_load()
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    total, accepted = _count_submissions(window_start, window_end)
    if counters["errors"] or counters["no_item"]:
        raise RuntimeError(f"{counters['errors']} of {counters['requests']} answers failed and {counters['no_item']} members ran"
                           " out of work: the benchmark measured something else")
    rate = accepted / seconds
    answers = total / seconds
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    ceiling = f"{static.requests_per_second:.0f} req/s trivial page, p99 {static.p99_ms:.1f} ms"
    met_rate, met_p99 = rate >= GOAL_RATE, p99 < GOAL_P99_MS
    used = cpu.seconds()
    per_answer = {name: 1000 * used_seconds / max(1, accepted) for name, used_seconds in used.items()}
    cores = os.cpu_count() or 1
    breakdown = ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(per_answer.items(), key=lambda kv: -kv[1]))
    return [
        Figure(NAME, "accepted submissions/s (QA review + aggregation beside)", round(rate, 1), "/s", ceiling=ceiling,
               goal=f">= {GOAL_RATE:g}/s", met=met_rate),
        Figure(NAME, "answers/s (all statuses; one POST each, next item included)", round(answers, 1), "/s", ceiling=ceiling),
        Figure(NAME, "answer p50 latency", round(p50, 2), "ms", ceiling=f"{static.p50_ms:.2f} ms trivial page"),
        Figure(NAME, "answer p99 latency", round(p99, 2), "ms", ceiling=f"{static.p99_ms:.2f} ms trivial page",
               goal=f"< {GOAL_P99_MS:g} ms", met=met_p99),
        Figure(NAME, f"CPU per accepted answer, ms by process: {breakdown}; machine busy {100 * cpu.machine_busy_share():.0f} %",
               round(sum(per_answer.values()), 1), "ms",
               ceiling=f"{cores} cores: {1000 * cores / GOAL_RATE:.1f} ms of CPU per answer at {GOAL_RATE:g}/s"),
        Figure(NAME, "invariants broken after the load (ledger sums, keys applied once, pending work queued, no orphaned job)"
               + (": " + "; ".join(broken[:5]) if broken else ""), len(broken), "", goal="0", met=not broken),
    ]


def broken_after_load() -> list[str]:
    """`sapien.invariants.broken_invariants()` on the benchmark's database and Redis."""
    from sapien.extensions import db
    from sapien.invariants import broken_invariants

    app = _app()
    with app.app_context():
        db.session.remove()
        return broken_invariants()


if __name__ == "__main__":
    if sys.argv[1:2] == ["review-loop"]:
        review_loop(float(sys.argv[2]))
    else:
        for figure in run():
            print(figure)
