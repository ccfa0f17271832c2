"""Leaderboards at scale: a ledger of 10,000,000 XP entries over 1,000,000 members on PostgreSQL.

Figures: rebuilding every board from the ledger (goal < 2 min) beside the SQL floor (one GROUP BY over
the same entries); the board page's server time — `board_page`, i.e. Redis reads plus the batched name
lookup — for a top-100 page and for a member's "around me" (goal p99 < 10 ms) beside raw Redis
ZREVRANGE/ZREVRANK on the same key and a SQL COUNT rank over 1,000,000 totals.
BENCH_LEADERBOARD_ENTRIES changes the ledger size (members = entries / 10).
"""

from __future__ import annotations

import os
import random
import statistics
import time

from sqlalchemy import text

from bench.harness import BENCH_DATABASE_URL, BENCH_REDIS_URL, ROOT, Figure, recreate_database

SAMPLES = 1_000
GOAL_PAGE_MS = 10.0
GOAL_REBUILD_S = 120.0
NAME = "Leaderboards, PostgreSQL + Redis"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def time_ms(call, samples: int = SAMPLES) -> list[float]:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def load_ledger(db, entries: int, members: int) -> None:
    """Members and XP entries written by PostgreSQL itself (generate_series): minutes, not hours."""
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, username_key, username_skeleton, email, password_hash, display_name, bio,"
                " role, timezone, hide_from_boards, session_version, is_banned, created_at)"
                # The UTS #39 skeleton of u<digits>: 0 looks like o and 1 like l (accounts/names.py).
                " SELECT g, 'u' || g, 'u' || g, translate('u' || g, '01', 'ol'), 'u' || g || '@bench.example', 'x',"
                " 'Member ' || g, '', 'member', 'UTC',"
                " g % 50 = 0, 1, false, now() FROM generate_series(1, :members) g"
            ),
            {"members": members},
        )
        connection.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), :members)"), {"members": members})
        connection.execute(
            text(
                "INSERT INTO ledger_entries (user_id, currency, amount, kind, idempotency_key, memo, balance_after, created_at)"
                " SELECT 1 + (g::bigint * 7919) % :members, 'xp', 1 + g % 40,"
                " (ARRAY['labeling:image_classification', 'labeling:text_classification',"
                "  'labeling:audio_transcription', 'quest_reward'])[1 + g % 4],"
                " 'bench:' || g, '', 0, now() - ((g % 200) || ' days')::interval - ((g % 1440) || ' minutes')::interval"
                " FROM generate_series(1, :entries) g"
            ),
            {"members": members, "entries": entries},
        )
        connection.execute(text("ANALYZE"))


def run() -> list[Figure]:
    from flask_migrate import upgrade
    from redis import Redis

    from sapien import create_app
    from sapien.database import utcnow
    from sapien.extensions import db
    from sapien.leaderboards.boards import Board, member_of
    from sapien.leaderboards.reading import board_page, read_key
    from sapien.leaderboards.rebuild import rebuild_all

    entries = int(os.environ.get("BENCH_LEADERBOARD_ENTRIES", "10000000"))
    members = max(1, entries // 10)
    recreate_database()
    redis = Redis.from_url(BENCH_REDIS_URL)
    redis.flushdb()
    app = create_app({"SQLALCHEMY_DATABASE_URI": BENCH_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1), "REDIS_URL": BENCH_REDIS_URL})
    rng = random.Random(2026)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        load_ledger(db, entries, members)

        started = time.perf_counter()
        with db.engine.connect() as connection:
            connection.execute(text("SELECT user_id, sum(amount) FROM ledger_entries WHERE currency = 'xp' GROUP BY user_id")).fetchall()
        sql_floor = time.perf_counter() - started

        now = utcnow()
        started = time.perf_counter()
        report = rebuild_all(now)
        rebuild_seconds = time.perf_counter() - started

        key, _ = read_key(Board("xp", "all"), now)
        size = redis.zcard(key)
        pages = max(1, size // 100)
        with app.test_request_context():
            top = time_ms(lambda: board_page(Board("xp", "all"), None, now, page=rng.randint(1, pages)))
            around = time_ms(lambda: board_page(Board("xp", "all"), rng.randint(1, members), now, page=1))
        raw_range = time_ms(lambda: redis.zrevrange(key, (p := rng.randint(0, pages - 1) * 100), p + 99, withscores=True))
        raw_rank = time_ms(lambda: redis.zrevrank(key, member_of(rng.randint(1, members))))
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TEMP TABLE totals AS SELECT user_id, sum(amount) AS xp FROM ledger_entries GROUP BY user_id"))
            connection.execute(text("CREATE INDEX ON totals (xp)"))
            connection.execute(text("ANALYZE totals"))
            sql_rank = time_ms(lambda: connection.execute(text("SELECT count(*) FROM totals WHERE xp > :x"), {"x": rng.randint(1, 400)}).scalar(), 200)
        db.session.remove()
    redis.flushdb()
    ceiling_page = f"Redis ZREVRANGE 100 p50 {statistics.median(raw_range):.2f} / p99 {percentile(raw_range, 0.99):.2f} ms"
    ceiling_rank = f"Redis ZREVRANK p50 {statistics.median(raw_rank):.2f} ms; SQL COUNT rank over {size:,} totals p50 {statistics.median(sql_rank):.1f} ms"
    return [
        Figure(NAME, f"rebuild every board from {entries:,} ledger entries ({report.boards} boards)", round(rebuild_seconds, 1), "s",
               ceiling=f"{sql_floor:.1f} s (one SQL GROUP BY over the same entries)", goal=f"< {GOAL_REBUILD_S:.0f} s", met=rebuild_seconds < GOAL_REBUILD_S),
        Figure(NAME, f"top-100 page server time p50 ({size:,} members on the board)", round(statistics.median(top), 2), "ms", ceiling=ceiling_page),
        Figure(NAME, "top-100 page server time p99", round(percentile(top, 0.99), 2), "ms", ceiling=ceiling_page,
               goal=f"< {GOAL_PAGE_MS:.0f} ms", met=percentile(top, 0.99) < GOAL_PAGE_MS),
        Figure(NAME, "top-100 + around-me page server time p50", round(statistics.median(around), 2), "ms", ceiling=ceiling_rank),
        Figure(NAME, "top-100 + around-me page server time p99", round(percentile(around, 0.99), 2), "ms", ceiling=ceiling_rank,
               goal=f"< {GOAL_PAGE_MS:.0f} ms", met=percentile(around, 0.99) < GOAL_PAGE_MS),
    ]
